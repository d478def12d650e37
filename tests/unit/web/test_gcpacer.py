"""The GC pacer freezes what lives and, when frozen objects outgrow the open connections,
sweeps once so that cyclic garbage frozen by mistake is still freed."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from realtime.web.gcpacer import GcPacer


class Node:
    """Something a weak reference can watch, put in a reference cycle."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # the pacer works on the whole process: give the other tests theirs back


def tracked(obj: object) -> bool:
    """Whether the collector still walks `obj` (frozen objects are not in get_objects())."""
    return any(o is obj for o in gc.get_objects())


def test_a_step_freezes_what_lives(unfrozen: None) -> None:
    pacer = GcPacer(lambda: 0)
    pacer.start()
    alive = [[1], [2]]
    assert tracked(alive)
    pacer.step()
    assert not tracked(alive)
    assert pacer.steps == 1 and pacer.sweeps == 0


def test_a_step_frees_young_cycles_before_freezing(unfrozen: None) -> None:
    pacer = GcPacer(lambda: 0)
    pacer.start()
    node = Node()
    ref = weakref.ref(node)
    del node
    pacer.step()
    assert ref() is None


def test_frozen_garbage_is_swept_once_memory_outgrows_the_connections(unfrozen: None) -> None:
    rss = [1000]
    connections = [10]
    pacer = GcPacer(lambda: connections[0], allowance=10, slack=50, rss=lambda: rss[0])
    pacer.start()
    node = Node()
    ref = weakref.ref(node)
    pacer.step()  # frozen while alive
    del node  # now cyclic garbage among the frozen
    rss[0] = 1140  # 40 over the baseline + slack, but 10 connections explain 100 of it
    pacer.step()
    assert ref() is not None and pacer.sweeps == 0
    connections[0] = 0
    pacer.step()
    assert pacer.sweeps == 1 and ref() is None
    pacer.step()  # the memory was not handed back: the new baseline, no sweep after sweep
    assert pacer.sweeps == 1
