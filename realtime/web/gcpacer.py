"""Keeps full garbage collections short while connections pile up.

CPython runs a full collection whenever the objects that survived into its oldest generation
have grown by a quarter since the last one. Every connection adds ~145 long-lived objects,
so while clients connect (after a deploy: everyone at once) full collections come every few
hundred connects, and each walks every connection held: 0.4-0.6 s at 5,000 connections,
during which no delivery leaves the node, and they freed nothing (measured in the
`p99_burst` bench scenario).

A closed connection is freed by reference counting (see delivery.wire.TrackingWebSocket.wait), so
whatever is alive can be frozen: once a second the pacer collects what is not frozen yet
(only that second's survivors) and freezes the rest. Every collection, full or not, then
walks only objects younger than a second.

Something that turns into cyclic garbage after it was frozen would stay. So when the
process's memory outgrows what the open connections explain (`allowance` bytes each, three
times the measured 33 KB) by more than `slack`, the pacer sweeps once: unfreeze, collect
everything, freeze. (Counting frozen objects instead would cost a walk over all of them,
80 ms at 5,000 connections, every time.)
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Callable

from ..loops import supervise

log = logging.getLogger(__name__)
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def freeze_startup_heap() -> None:
    """Collect, then freeze what start-up built (modules, the app: ~110,000 objects that live
    as long as the process)."""
    gc.collect()
    gc.freeze()


class GcPacer:
    def __init__(
        self,
        connections: Callable[[], int],
        *,
        every: float = 1.0,
        allowance: int = 100 * 1024,
        slack: int = 256 * 1024 * 1024,
        rss: Callable[[], int] | None = None,
    ) -> None:
        self.connections = connections
        self.every = every
        self.allowance = allowance
        self.slack = slack
        self.rss = rss or rss_bytes
        self.base = 0  # memory not explained by connections, as of start or the last sweep
        self.steps = 0
        self.sweeps = 0

    def start(self) -> None:
        freeze_startup_heap()
        self.base = self.rss()

    async def run(self) -> None:
        self.start()
        await supervise("gc pacer", self._step, every=self.every, logger=log)

    async def _step(self) -> None:
        self.step()

    def step(self) -> None:
        gc.collect()  # walks only what is not frozen yet
        gc.freeze()
        self.steps += 1
        explained = self.allowance * self.connections()
        if self.rss() > self.base + explained + self.slack:
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            self.sweeps += 1
            # Freed memory is not always handed back to the system: what is still unexplained
            # now is the new baseline, and only growth beyond it counts.
            self.base = max(self.base, self.rss() - explained)
            log.info("gc pacer swept (%d so far)", self.sweeps)


def rss_bytes() -> int:
    """This process's resident memory (Linux); 0 elsewhere, which never sweeps."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, ValueError, IndexError):
        return 0
