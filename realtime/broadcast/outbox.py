"""Store, then send: the one place where a stored message goes on to the nodes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from ..store.stream import Stored
from .base import Broadcast


class Outbox:
    """Every producer (HTTP API, Tracker, demo worker, queue notifier) stores through the
    store and hands the result here; `counted` (the server's `stored` metric) sees each one."""

    def __init__(
        self, broadcast: Broadcast, *, counted: Callable[[int], None] | None = None
    ) -> None:
        self.broadcast = broadcast
        self.counted = counted

    async def put(self, storing: Awaitable[Stored]) -> Stored:
        """Await the store call, then send what it stored."""
        stored = await storing
        await self.send([stored])
        return stored

    async def send(self, stored: Sequence[Stored]) -> None:
        if not stored:
            return
        if self.counted is not None:
            self.counted(len(stored))
        await self.broadcast.send(stored)

    async def close(self) -> None:
        await self.broadcast.close()
