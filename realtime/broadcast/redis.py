"""Reaching the nodes through Redis: each stored message as a python-socketio pub/sub `emit`
on its user's channel (broadcast.channels), so that only the nodes holding that user hear it.
On a Redis Cluster the channel is sharded (SPUBLISH)."""

from __future__ import annotations

import asyncio
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
from .resp import Address, RespConnection, publish_command
from .signing import Sealer, sealer
from .topology import Topology, discover

log = logging.getLogger(__name__)

# A message of ours on a user's channel: "send this user's connections a fresh snapshot".
REFRESH = "rt_refresh"
PUBLISH_TIMEOUT = 1.5
# One batch's bound. A caller waits for the batch in flight, then its own: at most twice
# this, within PUBLISH_TIMEOUT, with no timer of its own (the hot path of every publish).
PIPELINE_TIMEOUT = 0.7


# Renew the lease if we hold it, else take it if nobody does (one round trip, atomic).
_LEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""


def emit_message(stored: Stored, host_id: str) -> dict[str, Any]:
    """The message python-socketio's AsyncPubSubManager exchanges for an `emit`."""
    return {
        "method": "emit",
        "event": stored.payload["type"],
        "data": [stored.payload],
        "binary": False,
        "namespace": "/",
        "room": room_of(stored.user_id),
        "skip_sid": None,
        "callback": None,
        "host_id": host_id,
    }


def sealed_emit(stored: Stored, host_id: str, seal: Sealer | None) -> bytes:
    """What goes on the user's channel: the emit, sealed (signing.py) so nodes can trust it."""
    body = codec.dumps_bytes(emit_message(stored, host_id))
    return body if seal is None else seal.seal(body)


_TIMEOUTS: dict[str, Any] = {
    "socket_connect_timeout": 1.0,
    "socket_timeout": 1.0,
    "retry_on_timeout": False,
}


def redis_client(url: str) -> aioredis.Redis:
    """A client whose every call is bounded in time: a dead Redis must never hang a caller."""
    return aioredis.Redis.from_url(url, health_check_interval=5, **_TIMEOUTS)


def _release(batch: Sequence[tuple[Sequence[Stored], asyncio.Future[None]]]) -> None:
    for _, done in batch:
        if not done.done():
            done.set_result(None)


class RedisBroadcast:
    """Concurrent sends share one pipelined round trip (in call order), the way concurrent
    publishes share one transaction: one PUBLISH round trip per message would cap a busy
    publisher far below what the store sustains. Whether Redis is a cluster is found out at
    the first send."""

    def __init__(self, url: str, *, host_id: str | None = None, key: bytes | None = None) -> None:
        self.url = url
        self.sealer = sealer(key)
        self.host_id = host_id or uuid.uuid4().hex
        self.failures = 0
        self.topology: Topology | None = None
        self._client: Any = None
        # The batch path's own connection (single Redis): redis-py's pipeline costs ~60 us of
        # CPU per command, this one a few (see _publish_fast).
        self._fast: RespConnection | None = None
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
        await done

    async def _run(self) -> None:
        try:
            # One turn of the loop first: the callers a commit batch just woke up each send
            # right after this one, and they share the round trip instead of queueing.
            await asyncio.sleep(0)
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    await self._publish([s for stored, _ in batch for s in stored])
                finally:
                    _release(batch)
        finally:
            # Cancelled (shutdown): what is still queued is stored, and its callers return.
            batch, self._pending = self._pending, []
            _release(batch)

    async def _publish(self, stored: Sequence[Stored]) -> None:
        try:
            async with asyncio.timeout(PIPELINE_TIMEOUT):
                client = await self.client()
                host, seal = self.host_id, self.sealer
                frames = [(user_channel(s.user_id), sealed_emit(s, host, seal)) for s in stored]
                if self.sharded:
                    pipe = client.pipeline(transaction=False)
                    for channel, message in frames:
                        pipe.execute_command("SPUBLISH", channel, message)
                    await pipe.execute()
                else:
                    await self._publish_fast(frames)
            self.failures = 0
        except Exception as exc:  # stored already; the nodes catch up from the store
            if self._fast is not None:
                await self._fast.close()  # mid-batch: the replies can no longer be matched
                self._fast = None
            self.failures += 1
            if self.failures == 1:
                print(
                    f"warning: redis publish failed ({exc}); stored, delivery will follow the database",
                    file=sys.stderr,
                )
            log.warning("redis publish failed: %s", exc)

    async def _publish_fast(self, frames: Sequence[tuple[str, bytes]]) -> None:
        """Every PUBLISH of the batch in one write, then their replies in as few reads."""
        if self._fast is None:
            conn = RespConnection(Address.from_url(self.url))
            await conn.open(PIPELINE_TIMEOUT)
            self._fast = conn
        conn = self._fast
        conn.write(b"".join(publish_command(channel, message) for channel, message in frames))
        got = 0
        while got < len(frames):
            for reply in await conn.replies():
                if isinstance(reply, Exception):
                    raise ConnectionError(f"redis PUBLISH: {reply}")
                got += 1

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

    async def lease(self, name: str, seconds: float) -> bool:
        """Take or keep the lease `name` for this publisher's host id: true while we hold it."""
        client = await self.client()
        held = await client.eval(_LEASE, 1, name, self.host_id, int(seconds * 1000))
        return bool(held)

    async def close(self) -> None:
        if self._fast is not None:
            await self._fast.close()
        if self._client is not None:
            await self._client.aclose()
