"""python-socketio's AsyncRedisManager, extended where it falls short for a durable stream.

What the stock manager does not do, and this one does:
- Stream messages (they carry a `seq`) go to this node's `Fanout`, which delivers them in
  order and fills gaps from the store, instead of straight into the room.
- The listener never backs off for long (at most 2 s, reset on success), surfaces every
  connection error instead of letting redis-py re-subscribe silently, and tells the follower
  to catch up from the database each time a subscription is confirmed: whatever was published
  while it was away is delivered from the store.
- A half-open connection never errors, so the subscription is pinged every second and a few
  seconds of silence count as dead. A self-ping through the channel proves the node can hear
  itself (a node that is subscribed but deaf is reported not ready and re-subscribes).
- Every Redis call is bounded in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import socketio
from redis import asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from .. import codec
from ..broadcast.redis import CHANNEL, REFRESH, RedisBroadcast
from ..broadcast.signing import verified
from ..codec import SocketIOJson
from ..domain.job import MESSAGE_TYPES
from ..logs import RateLimitedLog
from ..metrics import Metrics
from ..store.stream import Stored
from .fanout import Fanout
from .health import NodeState

log = logging.getLogger(__name__)

PING_EVERY = 1.0
DEAD_AFTER = 4.0
SELF_PING_EVERY = 2.0
DEAF_AFTER = 7.0
MAX_BACKOFF = 2.0
STREAM_EVENTS = frozenset(MESSAGE_TYPES)


class NodeBroadcast:
    """What the serving node itself publishes: delivered here at once, then to the others."""

    def __init__(self, fanout: Fanout, remote: RedisBroadcast) -> None:
        self.fanout = fanout
        self.remote = remote

    async def send(self, stored: Sequence[Stored]) -> None:
        for s in stored:
            await self.fanout.deliver(s.user_id, s.payload)
        await self.remote.send(stored)

    async def refresh(self, user_id: str) -> None:
        await self.fanout.refresh(user_id)
        await self.remote.refresh(user_id)

    async def close(self) -> None:
        await self.remote.close()


class StreamRedisManager(socketio.AsyncRedisManager):  # type: ignore[misc]
    def __init__(
        self,
        url: str,
        *,
        state: NodeState,
        metrics: Metrics,
        key: bytes | None = None,
        channel: str = CHANNEL,
    ) -> None:
        super().__init__(
            url,
            channel=channel,
            json=SocketIOJson,
            redis_options={
                "socket_connect_timeout": 1.0,
                "socket_timeout": 2.0,
                "retry": Retry(NoBackoff(), 0),
            },
        )
        self.fanout: Fanout | None = None
        self.on_subscribed: Callable[[], None] = lambda: None
        self.alive = False
        self.last_seen = 0.0
        self.last_self_ping = 0.0
        self.reconnects = 0
        self._pinger: RedisBroadcast | None = None
        self.metrics = metrics
        self.key = key
        self.foreign = RateLimitedLog(
            "dropped a message on the channel that is not ours", logger=log
        )
        state.subscription_alive = self.health

    def broadcast(self, fanout: Fanout) -> NodeBroadcast:
        self._pinger = RedisBroadcast(
            self.redis_url, host_id=self.host_id, channel=self.channel, key=self.key
        )
        return NodeBroadcast(fanout, self._pinger)

    # ---- health --------------------------------------------------------------------------------

    def listening(self) -> bool:
        now = time.monotonic()
        return (
            self.alive
            and now - self.last_seen < DEAD_AFTER
            and now - self.last_self_ping < DEAF_AFTER
        )

    async def health(self) -> dict[str, bool]:
        redis_ok = False
        if self._pinger is not None:
            try:
                async with asyncio.timeout(1.0):
                    redis_ok = bool(await self._pinger.redis.ping())
            except Exception:
                redis_ok = False
        return {"redis": redis_ok, "subscription": self.listening()}

    # ---- receiving -----------------------------------------------------------------------------

    async def _thread(self) -> None:
        """python-socketio's listener loop, without its per-message cost (a logger lookup and
        a debug line formatted for every message): this is the receive path of every live
        delivery. Only the service's own messages are acted on: python-socketio's other
        methods (disconnect, rooms, callbacks) are never sent by the service, so on the
        channel they are someone else's, and dropped."""
        async for raw in self._listen():
            try:
                data = codec.loads(raw)
                method = data["method"] if isinstance(data, dict) else None
            except (ValueError, KeyError):
                self._drop("not json", raw)
                continue
            try:
                if data.get("host_id") == self.host_id:
                    continue  # our own publish: delivered here already
                if method == "emit":
                    await self._handle_emit(data)
                elif method == "rt_ping":
                    pass  # another node hearing itself
                elif method == REFRESH:
                    if self.fanout is not None and isinstance(data.get("user"), str):
                        await self.fanout.refresh(data["user"])
                else:
                    self._drop("method", method)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("redis message %s failed", method)

    def _drop(self, reason: str, what: object) -> None:
        self.metrics.channel_dropped.labels(reason).inc()
        self.foreign.note(ValueError(f"{reason}: {str(what)[:100]}"))

    async def _handle_emit(self, message: dict[str, Any]) -> None:
        """A stream message for one user's room, or nothing: a foreign event, a room-less or
        non-object payload is dropped, never relayed to anyone's connections."""
        room = message.get("room")
        data = message.get("data")
        event = message.get("event")
        payload = data[0] if isinstance(data, list) and len(data) == 1 else None
        seq = payload.get("seq") if isinstance(payload, dict) else None
        if (
            event not in STREAM_EVENTS
            or not isinstance(room, str)
            or not room.startswith("user:")
            or not isinstance(payload, dict)
            or payload.get("type") != event
            or not isinstance(seq, int)
            or isinstance(seq, bool)
            or seq < 1
        ):
            self._drop("not a stream message", message.get("event"))
            return
        if self.fanout is None:
            return
        if verified(self.key, room, codec.dumps_bytes(payload), message.get("rt_sig")):
            await self.fanout.deliver(room[5:], payload)
        else:
            # Only a hint: what gets sent is what the store holds up to that seq.
            self.metrics.channel_unsigned.inc()
            await self.fanout.deliver_from_store(room[5:], seq)

    async def _publish(self, data: Any) -> Any:
        try:
            async with asyncio.timeout(1.5):
                return await super()._publish(data)
        except TimeoutError:
            log.warning("redis publish timed out")
            return None

    def _connect(self) -> None:
        self.redis = aioredis.Redis.from_url(self.redis_url, **self.redis_options)
        self.pubsub = self.redis.pubsub(ignore_subscribe_messages=False)

    async def _disconnect(self) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                if self.pubsub is not None:
                    await self.pubsub.aclose()  # type: ignore[no-untyped-call]
                if self.redis is not None:
                    await self.redis.aclose()

    async def _listen(self) -> AsyncIterator[bytes]:
        channel = self.channel.encode()
        self_ping = json.dumps({"method": "rt_ping", "host_id": self.host_id}).encode()
        backoff = 0.1
        while True:
            try:
                self._connect()
                async with asyncio.timeout(2.0):
                    await self.pubsub.subscribe(self.channel)
                    while True:  # wait for the confirmation
                        msg = await self.pubsub.get_message(timeout=1.0)
                        if msg and msg["type"] == "subscribe":
                            break
                now = time.monotonic()
                self.alive, self.last_seen, self.last_self_ping = True, now, now
                if self.reconnects:
                    log.warning("redis subscription restored (reconnect %d)", self.reconnects)
                backoff = 0.1
                # Anything published while we were not subscribed is in the store: catch up.
                self.on_subscribed()
                last_ping = last_self = 0.0
                while True:
                    now = time.monotonic()
                    if now - last_ping >= PING_EVERY:
                        await self.pubsub.ping()
                        last_ping = now
                    if now - last_self >= SELF_PING_EVERY and self._pinger is not None:
                        last_self = now
                        with contextlib.suppress(Exception):
                            async with asyncio.timeout(1.0):
                                await self._pinger.redis.publish(self.channel, self_ping)
                    msg = await self.pubsub.get_message(timeout=0.25)
                    now = time.monotonic()
                    if msg is not None:
                        self.last_seen = now
                        if msg["type"] == "message" and msg["channel"] == channel:
                            data = msg["data"]
                            if data == self_ping:
                                self.last_self_ping = now
                            else:
                                yield data
                    if now - self.last_seen > DEAD_AFTER:
                        raise ConnectionError("subscription silent: connection presumed dead")
                    if now - self.last_self_ping > DEAF_AFTER:
                        raise ConnectionError("not hearing our own pings: re-subscribing")
            except asyncio.CancelledError:
                await self._disconnect()
                raise
            except Exception as exc:
                if self.alive:
                    log.warning("redis subscription lost: %s", exc)
                self.alive = False
                self.reconnects += 1
                await self._disconnect()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
