"""The Broadcast port and the implementations that need no Redis.

- `LocalBroadcast`: the serving process itself, no Redis: straight into this node's fan-out.
- `NoBroadcast`: another process with no Redis: nothing to do, the nodes follow the store.
- `redis.RedisBroadcast`: any process, Redis configured.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from ..store.stream import Stored


class Broadcast(Protocol):
    async def send(self, stored: Sequence[Stored]) -> None: ...

    async def refresh(self, user_id: str) -> None:
        """Every connection of the user gets a fresh snapshot (their job list changed without
        a message: "Clear finished")."""

    async def close(self) -> None: ...


class NoBroadcast:
    async def send(self, stored: Sequence[Stored]) -> None:
        return None

    async def refresh(self, user_id: str) -> None:
        return None

    async def close(self) -> None:
        return None


class Deliverer(Protocol):
    """What LocalBroadcast hands messages to: this node's fan-out (delivery.Fanout)."""

    async def deliver(self, user_id: str, payload: dict[str, Any]) -> None: ...

    async def refresh(self, user_id: str) -> None: ...


class LocalBroadcast:
    def __init__(self, fanout: Deliverer) -> None:
        self.fanout = fanout

    async def send(self, stored: Sequence[Stored]) -> None:
        for s in stored:
            await self.fanout.deliver(s.user_id, s.payload)

    async def refresh(self, user_id: str) -> None:
        await self.fanout.refresh(user_id)

    async def close(self) -> None:
        return None
