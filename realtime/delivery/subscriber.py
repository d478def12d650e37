"""python-socketio's AsyncRedisManager, with its listener replaced by one built for a durable
stream on many nodes.

What the stock manager does not do, and this one does:
- **A node hears only its own users.** It subscribes to a user's channel
  (broadcast.channels) when that user's first connection arrives and unsubscribes when the last
  one leaves, batched: a reconnect storm of thousands of users is a few SUBSCRIBE commands.
  Once a subscription is confirmed, that user is caught up from the store, so a message stored
  before it (while the connection's replay was read) is delivered from the database, in order.
- **Redis Cluster.** When the URL names a cluster node, user channels are sharded
  (SSUBSCRIBE, one connection per master, by slot); a single Redis works as before.
- **A cheap receive path.** Each connection reads whatever Redis has sent in one go, hiredis
  parses every reply of it, and the batch is handled in one pass (broadcast.resp).
- **Stream messages go to this node's `Fanout`**, which delivers them in order and fills gaps
  from the store; a message that is not signed by a publisher of the deployment is only a hint.
- **Stock emitters are publishers** (delivery.ingest).
- **Bounded and watched.** Every Redis call has a timeout; each connection is pinged every
  second and a few seconds of silence count as dead; a self-ping through each connection's own
  channel proves the node hears itself (deaf: not ready, and it reconnects). Reconnects back
  off at most 2 s, and every reconnect catches its users up from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import hiredis
import socketio
from redis.crc import key_slot

from .. import codec
from ..broadcast.channels import (
    NODE_EMITTER_PATTERN,
    PY_EMITTER,
    node_channel,
    user_channel,
    user_of,
)
from ..broadcast.redis import REFRESH, RedisBroadcast
from ..broadcast.resp import Address, RespConnection
from ..broadcast.signing import MAGIC, sealer, unseal
from ..broadcast.topology import Topology, discover
from ..codec import SocketIOJson
from ..domain.job import MESSAGE_TYPES
from ..logs import RateLimitedLog
from ..metrics import Metrics
from ..store.stream import Stored
from .fanout import Fanout
from .health import NodeState
from .ingest import Ingest, from_node, python_decoder

log = logging.getLogger(__name__)

PING_EVERY = 1.0
DEAD_AFTER = 4.0
SELF_PING_EVERY = 2.0
DEAF_AFTER = 7.0
MAX_BACKOFF = 2.0
# Channels per SUBSCRIBE command: a storm of new users is a few commands, none huge.
CHUNK = 1000
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


class Link:
    """One subscriber connection: to the single Redis, or to one master of a cluster (sharded).
    `fixed` channels are subscribed at every (re)connect; user channels come and go."""

    def __init__(
        self,
        owner: StreamRedisManager,
        address: Address,
        *,
        sharded: bool,
        ping_channel: str,
        fixed: Sequence[tuple[str, Sequence[str]]] = (),
    ) -> None:
        self.owner = owner
        self.address = address
        self.sharded = sharded
        self.ping_channel = ping_channel
        self.fixed = fixed
        self.sub, self.unsub = (
            ("SSUBSCRIBE", "SUNSUBSCRIBE") if sharded else ("SUBSCRIBE", "UNSUBSCRIBE")
        )
        self.wanted: set[str] = set()
        self.confirmed: set[str] = set()
        # UNSUBSCRIBEs sent and not answered yet: their replies are ours, not the cluster's.
        self._leaving: dict[str, int] = {}
        self._adds: set[str] = set()
        self._removes: set[str] = set()
        self.flush = asyncio.Event()
        self.alive = False
        self.last_seen = 0.0
        self.last_self_ping = 0.0
        self.reconnects = 0
        self.conn: RespConnection | None = None

    def listening(self, now: float) -> bool:
        return (
            self.alive
            and now - self.last_seen < DEAD_AFTER
            and now - self.last_self_ping < DEAF_AFTER
        )

    def want(self, channel: str) -> None:
        self.wanted.add(channel)
        self._removes.discard(channel)
        self._adds.add(channel)
        self.flush.set()

    def unwant(self, channel: str) -> None:
        self.wanted.discard(channel)
        self._adds.discard(channel)
        self._removes.add(channel)
        self.flush.set()

    async def run(self) -> None:
        backoff = 0.1
        while True:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.alive:
                    log.warning("redis subscription lost (%s): %s", self.address.port, exc)
            finally:
                self.alive = False
                self.confirmed.clear()
                if self.conn is not None:
                    await self.conn.close()
                    self.conn = None
            self.reconnects += 1
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)
            if self.owner.topology.cluster:
                await self.owner.rediscover()
                if self.owner.stopped(self):
                    return

    def _send_chunks(self, command: str, channels: Iterable[str]) -> None:
        """Many channels per command; on a cluster one command per slot (the channels of one
        sharded SUBSCRIBE must share a slot). All of it goes out in one write."""
        assert self.conn is not None
        groups: dict[int, list[str]] = {}
        if self.sharded:
            for ch in channels:
                groups.setdefault(key_slot(ch.encode()), []).append(ch)
        else:
            groups[0] = list(channels)
        for items in groups.values():
            for i in range(0, len(items), CHUNK):
                self.conn.send(command, *items[i : i + CHUNK])

    async def _session(self) -> None:
        self.conn = conn = RespConnection(self.address)
        await conn.open()
        self._adds.clear()
        self._removes.clear()
        self._leaving.clear()
        for command, channels in self.fixed:
            self._send_chunks(command, channels)
        self._send_chunks(self.sub, [self.ping_channel, *self.wanted])
        # Confirmed once its own ping channel is: then the rest of the batch is too.
        async with asyncio.timeout(2.0):
            while self.ping_channel not in self.confirmed:
                await self._handle(await conn.replies())
        now = time.monotonic()
        self.alive, self.last_seen, self.last_self_ping = True, now, now
        if self.reconnects:
            log.warning("redis subscription restored (%s)", self.address.port)
        # Anything published while we were not subscribed is in the store: catch up.
        self.owner.on_subscribed()
        # Either ends the session: the writer when the connection went silent or deaf (a
        # half-open socket never errors, so the reader alone would wait forever).
        tasks = [asyncio.create_task(self._reader()), asyncio.create_task(self._writer())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
            raise ConnectionError("subscriber stopped")
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(BaseException):
                    await task

    async def _reader(self) -> None:
        conn = self.conn
        assert conn is not None
        while True:
            batch = await conn.replies()
            self.last_seen = time.monotonic()
            await self._handle(batch)

    async def _writer(self) -> None:
        conn = self.conn
        assert conn is not None
        last_self = 0.0
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(PING_EVERY):
                    await self.flush.wait()
            self.flush.clear()
            if self._removes:
                self._send_chunks(self.unsub, self._removes)
                self.confirmed.difference_update(self._removes)
                for ch in self._removes:
                    self._leaving[ch] = self._leaving.get(ch, 0) + 1
                self._removes.clear()
            if self._adds:
                self._send_chunks(self.sub, self._adds)
                self._adds.clear()
            now = time.monotonic()
            conn.send("PING")
            if now - last_self >= SELF_PING_EVERY:
                last_self = now
                await self.owner.self_ping(self.ping_channel, self.sharded)
            if now - self.last_seen > DEAD_AFTER:
                raise ConnectionError("subscription silent: connection presumed dead")
            if now - self.last_self_ping > DEAF_AFTER:
                raise ConnectionError("not hearing our own pings: re-subscribing")

    async def _handle(self, batch: list[Any]) -> None:
        owner = self.owner
        confirmed: list[str] = []
        for reply in batch:
            if isinstance(reply, hiredis.ReplyError):
                # MOVED/ASK on a cluster (the slot went elsewhere), or a refused command.
                raise ConnectionError(f"redis: {reply}")
            if not isinstance(reply, list) or not reply:
                continue
            kind = reply[0]
            if kind == b"message" or kind == b"smessage":
                channel = reply[1]
                if channel.startswith(b"realtime#user:"):
                    await owner.handle_stream(reply[2])
                elif channel == b"realtime":
                    await owner.handle_py_channel(reply[2])
                else:
                    self.last_self_ping = time.monotonic()
            elif kind == b"pmessage":
                owner.handle_node_emit(reply[2], reply[3])
            elif kind == b"subscribe" or kind == b"ssubscribe":
                name = reply[1].decode()
                self.confirmed.add(name)
                user = user_of(name)
                if user is not None:
                    confirmed.append(user)
            elif kind == b"sunsubscribe" or kind == b"unsubscribe":
                name = reply[1].decode()
                asked = self._leaving.get(name, 0)
                if asked > 1:
                    self._leaving[name] = asked - 1
                elif asked == 1:
                    del self._leaving[name]
                elif self.sharded and (name in self.wanted or name == self.ping_channel):
                    # Not asked for: the cluster moved this slot elsewhere.
                    raise ConnectionError(f"redis unsubscribed us from {name}")
        if confirmed:
            owner.catch_up(confirmed)


class StreamRedisManager(socketio.AsyncRedisManager):  # type: ignore[misc]
    def __init__(
        self,
        url: str,
        *,
        state: NodeState,
        metrics: Metrics,
        key: bytes | None = None,
    ) -> None:
        super().__init__(url, channel=PY_EMITTER, json=SocketIOJson)
        self.address = Address.from_url(url)
        self.fanout: Fanout | None = None
        self.ingest: Ingest | None = None
        # Set by create_app: "catch these users up from the store" (the follower).
        self.catch_up_users: Callable[[list[str]], Awaitable[None]] | None = None
        self.on_subscribed: Callable[[], None] = lambda: None
        self.topology = Topology()
        self.links: list[Link] = []
        # Users with a connection here: their channels are what the links subscribe to.
        self.users: set[str] = set()
        self._pinger: RedisBroadcast | None = None
        self.metrics = metrics
        self.key = key
        self.sealer = sealer(key)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._link_tasks: dict[Link, asyncio.Task[None]] = {}
        self.foreign = RateLimitedLog(
            "dropped a message on the channel that is not ours", logger=log
        )
        state.subscription_alive = self.health

    def broadcast(self, fanout: Fanout) -> NodeBroadcast:
        self._pinger = RedisBroadcast(self.redis_url, host_id=self.host_id, key=self.key)
        return NodeBroadcast(fanout, self._pinger)

    # ---- interest (called by Fanout) ----------------------------------------------------------

    def want(self, user_id: str) -> None:
        self.users.add(user_id)
        link = self._link_for(user_channel(user_id))
        if link is not None:
            link.want(user_channel(user_id))

    def unwant(self, user_id: str) -> None:
        self.users.discard(user_id)
        link = self._link_for(user_channel(user_id))
        if link is not None:
            link.unwant(user_channel(user_id))

    def _link_for(self, channel: str) -> Link | None:
        if not self.links:
            return None
        if not self.topology.cluster:
            return self.links[0]
        i = self.topology.master_of(channel)
        return self.links[1 + i] if 0 <= i < len(self.links) - 1 else None

    # ---- health --------------------------------------------------------------------------------

    def listening(self) -> bool:
        now = time.monotonic()
        return bool(self.links) and all(link.listening(now) for link in self.links)

    async def health(self) -> dict[str, bool]:
        redis_ok = False
        if self._pinger is not None:
            try:
                async with asyncio.timeout(1.0):
                    redis_ok = await self._pinger.ping()
            except Exception:
                redis_ok = False
        return {"redis": redis_ok, "subscription": self.listening()}

    async def self_ping(self, channel: str, sharded: bool) -> None:
        if self._pinger is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await self._pinger.raw_publish(channel, b"ping", sharded=sharded)

    # ---- the listener --------------------------------------------------------------------------

    async def _thread(self) -> None:
        """Started by python-socketio (manager.initialize): discovers the topology, then runs
        a link per connection until cancelled."""
        attempts = 0
        while True:
            try:
                self.topology = await discover(self.address)
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if attempts % 60 == 0:  # once a minute, not once a try
                    log.warning("redis unavailable, retrying every second: %s", exc)
                attempts += 1
                await asyncio.sleep(1.0)
        self._build_links()
        if self.ingest is not None:
            self._spawn(self.ingest.run())
        try:
            await asyncio.Event().wait()  # until cancelled (the app's cleanup)
        finally:
            tasks = [*self._link_tasks.values(), *self._tasks]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=2.0)
            for task in tasks:
                if task.done() and not task.cancelled():
                    task.exception()  # retrieved, so asyncio does not warn about it

    def _build_links(self) -> None:
        for task in self._link_tasks.values():
            task.cancel()
        self._link_tasks.clear()
        fixed = [("SUBSCRIBE", [PY_EMITTER]), ("PSUBSCRIBE", [NODE_EMITTER_PATTERN])]
        topo = self.topology
        classic = Link(
            self,
            topo.masters[0] if topo.cluster else self.address,
            sharded=False,
            ping_channel=node_channel(self.host_id),
            fixed=fixed,
        )
        self.links = [classic]
        for i, master in enumerate(topo.masters):
            self.links.append(
                Link(
                    self,
                    master,
                    sharded=True,
                    ping_channel=topo.channel_on(i, node_channel(self.host_id, "#shard")),
                )
            )
        for ch in map(user_channel, self.users):
            link = self._link_for(ch)
            if link is not None:
                link.wanted.add(ch)
        for link in self.links:
            self._link_tasks[link] = asyncio.create_task(link.run())

    async def rediscover(self) -> None:
        """A cluster link failed: the slots may have moved. Rebuild the links if they did."""
        try:
            topology = await discover(self.address)
        except Exception:
            return
        if topology != self.topology:
            log.warning("redis cluster topology changed: re-subscribing")
            self.topology = topology
            self._build_links()

    def stopped(self, link: Link) -> bool:
        return link not in self._link_tasks

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def catch_up(self, users: list[str]) -> None:
        if self.catch_up_users is not None:
            self._spawn(self.catch_up_users(users))

    # ---- messages ------------------------------------------------------------------------------

    def drop(self, reason: str, what: object) -> None:
        self.metrics.channel_dropped.labels(reason).inc()
        self.foreign.note(ValueError(f"{reason}: {str(what)[:100]}"))

    async def handle_stream(self, raw: bytes) -> None:
        """A message on a user channel: one of ours (stream message or refresh)."""
        body, sealed = unseal(self.sealer, raw)
        try:
            data = codec.loads(body)
            method = data["method"] if isinstance(data, dict) else None
        except (ValueError, KeyError):
            self.drop("not json", raw)
            return
        try:
            if data.get("host_id") == self.host_id:
                return  # our own publish: delivered here already
            if sealed and method == "emit":
                # Sealed by a publisher of this deployment, byte for byte as it was built
                # (broadcast.redis.emit_message): the hot path, no further checks.
                if self.fanout is not None:
                    await self.fanout.deliver(data["room"][5:], data["data"][0])
            elif method == "emit":
                await self._handle_emit(data)
            elif method == REFRESH:
                if self.fanout is not None and isinstance(data.get("user"), str):
                    await self.fanout.refresh(data["user"])
            else:
                self.drop("method", method)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("redis message %s failed", method)

    async def handle_py_channel(self, raw: bytes) -> None:
        """The shared channel: python-socketio's stock emitter (no seq: ingested), or a
        sequenced message of ours from a publisher of before per-user channels."""
        if raw[:4] == MAGIC:
            await self.handle_stream(raw)
            return
        try:
            data = codec.loads(raw)
        except ValueError:
            self.drop("not json", raw)
            return
        payload = data.get("data") if isinstance(data, dict) else None
        first = payload[0] if isinstance(payload, list) and payload else payload
        ours = isinstance(first, dict) and "seq" in first
        if ours or (isinstance(data, dict) and data.get("method") == REFRESH):
            await self.handle_stream(raw)
        elif self.ingest is not None:
            self.ingest.put(b"realtime", raw, python_decoder(raw))

    def handle_node_emit(self, channel: bytes, raw: bytes) -> None:
        if self.ingest is not None:
            self.ingest.put(channel, raw, lambda: from_node(raw))

    async def _handle_emit(self, message: dict[str, Any]) -> None:
        """An unsealed stream message for one user's room (a hint), or nothing: a foreign
        event, a room-less or non-object payload is dropped, never relayed to anyone."""
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
            self.drop("not a stream message", message.get("event"))
            return
        if self.fanout is None:
            return
        # Not sealed: only a hint. What gets sent is what the store holds up to that seq.
        self.metrics.channel_unsigned.inc()
        await self.fanout.deliver_from_store(room[5:], seq)

    async def _publish(self, data: Any) -> Any:
        """python-socketio's own pub/sub traffic (never sent by the service's code paths)."""
        return None
