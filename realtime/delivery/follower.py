"""The Follower: polls the store for messages this node has not delivered. The path that needs
no Redis, and the safety net under it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Protocol

from ..loops import supervise
from ..store.stream import Position
from .fanout import Fanout

log = logging.getLogger(__name__)


class Positions(Protocol):
    """Stream positions of several users at once (store.Ledger)."""

    async def positions(self, user_ids: list[str]) -> dict[str, Position]: ...


class Follower:
    """Polls the store for messages this node has not delivered: the path that needs no Redis,
    and the safety net under it."""

    def __init__(self, fanout: Fanout, ledger: Positions, interval: float) -> None:
        self.fanout = fanout
        self.ledger = ledger
        self.interval = interval
        self.wake = asyncio.Event()
        self.last_ok: float = 0.0

    async def run(self) -> None:
        """Poll every `interval`, or at once when `wake` is set, until cancelled."""
        await supervise("follower", self._step, every=self.interval, wake=self.wake, logger=log)

    async def _step(self) -> None:
        await self.poll_once()
        self.last_ok = time.monotonic()

    async def poll_once(self, users: Iterable[str] | None = None) -> None:
        chans = self.fanout.channels
        ids = list(users) if users is not None else [u for u, c in chans.items() if c.sids]
        if not ids:
            return
        positions = await self.ledger.positions(ids)
        for user_id, pos in positions.items():
            ch = chans.get(user_id)
            if ch is None:
                continue
            if ch.epoch is not None and pos.epoch != ch.epoch:
                await self.fanout.reset_epoch(user_id)
            elif pos.last_seq > ch.cursor:
                await self.fanout.catch_up(user_id, pos.last_seq)
