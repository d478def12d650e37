"""Keeps full garbage collections short while connections pile up.

CPython runs a full collection whenever the objects that survived into its oldest generation
have grown by a quarter since the last one. Every connection adds ~145 long-lived objects,
so while clients connect (after a deploy: everyone at once) full collections come every few
hundred connects, and each walks every connection held: 0.4-0.6 s at 5,000 connections,
during which no delivery leaves the node, and they freed nothing (measured in the
`p99_burst` bench scenario).

A closed connection is freed by reference counting (see wire.TrackingWebSocket.wait), so
whatever is alive can be frozen: once a second the pacer collects what is not frozen yet
(only that second's survivors) and freezes the rest. Every collection, full or not, then
walks only objects younger than a second.

Something that turns into cyclic garbage after it was frozen would stay. So when the frozen
population outgrows what the open connections explain (`allowance` objects each, over
twice the measured 145), the pacer sweeps once: unfreeze, collect everything, freeze.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


def freeze_startup_heap() -> int:
    """Collect, then freeze what start-up built (modules, the app: ~110,000 objects that live
    as long as the process); returns how many objects are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


class GcPacer:
    def __init__(
        self,
        connections: Callable[[], int],
        *,
        every: float = 1.0,
        allowance: int = 400,
        slack: int = 200_000,
    ) -> None:
        self.connections = connections
        self.every = every
        self.allowance = allowance
        self.slack = slack
        self.base = 0
        self.steps = 0
        self.sweeps = 0
        self.longest_ms = 0.0

    def start(self) -> None:
        self.base = freeze_startup_heap()

    async def run(self) -> None:
        self.start()
        while True:
            await asyncio.sleep(self.every)
            self.step()

    def step(self) -> None:
        began = time.perf_counter()
        gc.collect()  # walks only what is not frozen yet
        gc.freeze()
        self.steps += 1
        if gc.get_freeze_count() > self.base + self.allowance * self.connections() + self.slack:
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            self.sweeps += 1
            log.info("gc pacer swept: %d objects frozen", gc.get_freeze_count())
        self.longest_ms = max(self.longest_ms, (time.perf_counter() - began) * 1000)
