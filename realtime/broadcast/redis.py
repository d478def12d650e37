"""Reaching the nodes through Redis: each stored message as a python-socketio pub/sub `emit`
on the shared channel, so every node's manager (delivery.subscriber) delivers it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import uuid
from collections.abc import Sequence
from typing import Any

from redis import asyncio as aioredis

from .. import codec
from ..domain.messages import room_of
from ..store.stream import Stored
from .signing import signature

log = logging.getLogger(__name__)

CHANNEL = "realtime"
# A message of ours on the channel: "send this user's connections a fresh snapshot".
REFRESH = "rt_refresh"
PUBLISH_TIMEOUT = 1.5
# The pipeline itself gets less, so that a caller queued behind it still returns in time.
PIPELINE_TIMEOUT = 1.0


def emit_message(stored: Stored, host_id: str, key: bytes | None = None) -> dict[str, Any]:
    """The message python-socketio's AsyncPubSubManager exchanges for an `emit`, signed with
    `key` (signing.py) so the nodes can trust its payload."""
    room = room_of(stored.user_id)
    message = {
        "method": "emit",
        "event": stored.payload["type"],
        "data": [stored.payload],
        "binary": False,
        "namespace": "/",
        "room": room,
        "skip_sid": None,
        "callback": None,
        "host_id": host_id,
    }
    if key is not None:
        message["rt_sig"] = signature(key, room, codec.dumps_bytes(stored.payload))
    return message


def redis_client(url: str) -> aioredis.Redis:
    """A client whose every call is bounded in time: a dead Redis must never hang a caller."""
    return aioredis.Redis.from_url(
        url,
        socket_connect_timeout=1.0,
        socket_timeout=1.0,
        health_check_interval=5,
        retry_on_timeout=False,
    )


class RedisBroadcast:
    """Concurrent sends share one pipelined round trip (in call order), the way concurrent
    publishes share one transaction: one PUBLISH round trip per message would cap a busy
    publisher far below what the store sustains."""

    def __init__(
        self,
        url: str,
        *,
        host_id: str | None = None,
        channel: str = CHANNEL,
        key: bytes | None = None,
    ) -> None:
        self.redis = redis_client(url)
        self.channel = channel
        self.key = key
        self.host_id = host_id or uuid.uuid4().hex
        self.failures = 0
        self._pending: list[tuple[Sequence[Stored], asyncio.Future[None]]] = []
        self._runner: asyncio.Task[None] | None = None

    async def send(self, stored: Sequence[Stored]) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((stored, done))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run())
        # A caller never waits longer than one publish timeout, even behind a stuck batch.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(PUBLISH_TIMEOUT):
                await asyncio.shield(done)

    async def _run(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            await self._publish([s for stored, _ in batch for s in stored])
            for _, done in batch:
                if not done.done():
                    done.set_result(None)

    async def _publish(self, stored: Sequence[Stored]) -> None:
        try:
            async with asyncio.timeout(PIPELINE_TIMEOUT):
                pipe = self.redis.pipeline(transaction=False)
                for s in stored:
                    message = emit_message(s, self.host_id, self.key)
                    pipe.publish(self.channel, codec.dumps_bytes(message))
                await pipe.execute()
            self.failures = 0
        except Exception as exc:  # stored already; the nodes catch up from the store
            self.failures += 1
            if self.failures == 1:
                print(
                    f"warning: redis publish failed ({exc}); stored, delivery will follow the database",
                    file=sys.stderr,
                )
            log.warning("redis publish failed: %s", exc)

    async def refresh(self, user_id: str) -> None:
        """Tell every node to send the user's connections a fresh snapshot."""
        message = {"method": REFRESH, "user": user_id, "host_id": self.host_id}
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT):
                await self.redis.publish(self.channel, codec.dumps_bytes(message))
        except Exception as exc:  # the lists refresh on their next connect
            log.warning("redis refresh failed: %s", exc)

    async def close(self) -> None:
        await self.redis.aclose()
