"""Reaching the nodes through Redis: each stored message as a python-socketio pub/sub `emit`
on its user's channel (broadcast.channels), so that only the nodes holding that user hear it.
On a Redis Cluster the channel is sharded (SPUBLISH)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import uuid
from collections.abc import Sequence
from typing import Any

from redis import asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from .. import codec
from ..domain.messages import room_of
from ..store.stream import Stored
from .channels import user_channel
from .resp import Address
from .signing import signature
from .topology import Topology, discover

log = logging.getLogger(__name__)

# A message of ours on a user's channel: "send this user's connections a fresh snapshot".
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


_TIMEOUTS: dict[str, Any] = {
    "socket_connect_timeout": 1.0,
    "socket_timeout": 1.0,
    "retry_on_timeout": False,
}


def redis_client(url: str) -> aioredis.Redis:
    """A client whose every call is bounded in time: a dead Redis must never hang a caller."""
    return aioredis.Redis.from_url(url, health_check_interval=5, **_TIMEOUTS)


class RedisBroadcast:
    """Concurrent sends share one pipelined round trip (in call order), the way concurrent
    publishes share one transaction: one PUBLISH round trip per message would cap a busy
    publisher far below what the store sustains. Whether Redis is a cluster is found out at
    the first send."""

    def __init__(self, url: str, *, host_id: str | None = None, key: bytes | None = None) -> None:
        self.url = url
        self.key = key
        self.host_id = host_id or uuid.uuid4().hex
        self.failures = 0
        self.topology: Topology | None = None
        self._client: Any = None
        self._pending: list[tuple[Sequence[Stored], asyncio.Future[None]]] = []
        self._runner: asyncio.Task[None] | None = None

    async def client(self) -> Any:
        """redis-py's client, or its cluster client when the URL names a cluster node."""
        if self._client is None:
            async with asyncio.timeout(PIPELINE_TIMEOUT):
                topology = await discover(Address.from_url(self.url))
            if topology.cluster:
                self._client = RedisCluster.from_url(
                    self.url, socket_connect_timeout=1.0, socket_timeout=1.0
                )
            else:
                self._client = redis_client(self.url)
            self.topology = topology
        return self._client

    @property
    def sharded(self) -> bool:
        return self.topology is not None and self.topology.cluster

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
                client = await self.client()
                pipe = client.pipeline(transaction=False)
                command = "SPUBLISH" if self.sharded else "PUBLISH"
                host, key = self.host_id, self.key
                for s in stored:
                    message = codec.dumps_bytes(emit_message(s, host, key))
                    pipe.execute_command(command, user_channel(s.user_id), message)
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

    async def raw_publish(self, channel: str, data: bytes, *, sharded: bool = False) -> None:
        client = await self.client()
        await client.execute_command("SPUBLISH" if sharded else "PUBLISH", channel, data)

    async def refresh(self, user_id: str) -> None:
        """Tell every node holding the user to send its connections a fresh snapshot."""
        message = {"method": REFRESH, "user": user_id, "host_id": self.host_id}
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT):
                await self.raw_publish(
                    user_channel(user_id), codec.dumps_bytes(message), sharded=self.sharded
                )
        except Exception as exc:  # the lists refresh on their next connect
            log.warning("redis refresh failed: %s", exc)

    async def ping(self) -> bool:
        client = await self.client()
        return bool(await client.ping())

    async def claim(self, key: str, seconds: int) -> bool:
        """SET NX: true for the first caller only (stock emitters' messages, delivery.ingest)."""
        client = await self.client()
        return bool(await client.set(key, b"1", nx=True, ex=seconds))

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
