"""Stock Socket.IO emitters as publishers: python-socketio's `RedisManager(write_only=True)`
(JSON on the `realtime` channel) and Node's `@socket.io/redis-emitter` (msgpack on
`socket.io#/#<room>#`). What they emit to a `user:<id>` room is validated like
`POST /api/publish`, stored once, and then delivered like any stored message, with its seq.

Every node hears these channels, and one of them stores what they carry: the holder of the
ingester lease (a Redis key it renews every second), one message at a time in arrival order,
so a job's updates are stored in the order they were emitted whichever node each tab is on.
The others keep the last BUFFER_SECONDS of messages: when the holder dies its lease expires,
another node takes it and stores what it buffered. Each message is claimed (SET NX on its
digest) before it is stored, so what the old holder stored is not stored twice; the price is
that byte-identical emits on one channel within CLAIM_SECONDS count as one message.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgpack  # type: ignore[import-untyped]
from marshmallow import ValidationError

from .. import codec
from ..domain.errors import DomainError
from ..domain.job import MESSAGE_TYPES
from ..domain.schemas import PublishBody

log = logging.getLogger(__name__)

CLAIM_SECONDS = 30
QUEUE_LIMIT = 10_000
LEASE_SECONDS = 3.0
RENEW_EVERY = 1.0
# Longer than a lease can outlive its holder plus one renewal: nothing falls between holders.
BUFFER_SECONDS = 5.0
# socket.io-parser's packet type for an event.
EVENT = 2


@dataclass(frozen=True)
class Emitted:
    user_id: str
    message: dict[str, Any]


class Dropped(ValueError):
    """Not something the service stores; the reason is the metric's label."""


def _messages(rooms: Any, event: Any, args: Any) -> list[Emitted]:
    if event not in MESSAGE_TYPES:
        raise Dropped("foreign event")
    if not isinstance(rooms, list) or not rooms:
        raise Dropped("no room")
    if len(args) != 1 or not isinstance(args[0], dict):
        raise Dropped("not one object")
    payload = args[0]
    if payload.get("type", event) != event:
        raise Dropped("type differs from event")
    out = []
    for room in rooms:
        if not isinstance(room, str) or not room.startswith("user:"):
            raise Dropped("not a user room")
        out.append(Emitted(room[5:], {**payload, "type": event}))
    return out


def from_python(data: dict[str, Any]) -> list[Emitted]:
    """python-socketio's pub/sub `emit` (already decoded from JSON)."""
    if data.get("method") != "emit":
        raise Dropped("method")
    if data.get("namespace") not in (None, "/"):
        raise Dropped("namespace")
    room = data.get("room")
    rooms = [room] if isinstance(room, str) else room
    args = data.get("data")
    # One argument arrives as itself; several (a tuple) as a list.
    return _messages(rooms, data.get("event"), args if isinstance(args, list) else [args])


def from_node(raw: bytes) -> list[Emitted]:
    """@socket.io/redis-emitter's message: msgpack [uid, packet, {rooms, except, flags}]."""
    try:
        _uid, packet, opts = msgpack.unpackb(raw, raw=False, strict_map_key=False)
    except (ValueError, TypeError, msgpack.UnpackException):
        raise Dropped("not msgpack") from None
    if not isinstance(packet, dict) or not isinstance(opts, dict):
        raise Dropped("not an emit")
    if packet.get("type") != EVENT or packet.get("nsp", "/") != "/":
        raise Dropped("not an event")
    data = packet.get("data")
    if not isinstance(data, list) or not data:
        raise Dropped("not an event")
    return _messages(opts.get("rooms"), data[0], data[1:])


class Ingest:
    """Claims, validates and stores what stock emitters sent, one at a time in arrival order
    (a job's updates must be stored in the order they were emitted)."""

    def __init__(
        self,
        *,
        claim: Callable[[str], Awaitable[bool]],
        lease: Callable[[], Awaitable[bool]],
        publish: Callable[[str, dict[str, Any], bool], Awaitable[object]],
        dropped: Callable[[str, object], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.claim = claim
        self.lease = lease
        self.publish = publish
        self.dropped = dropped
        self.clock = clock
        self.leader = False
        # Arrival order; consumed while this node holds the lease, else only kept a while.
        self.pending: deque[tuple[float, str, list[Emitted]]] = deque()
        self.wake = asyncio.Event()
        self._schema = PublishBody()

    def put(self, channel: bytes, raw: bytes, decode: Callable[[], list[Emitted]]) -> None:
        """Decode now (cheap, and invalid input is dropped at once); store in `run`."""
        try:
            emitted = decode()
        except Dropped as exc:
            self.dropped(str(exc), raw[:100])
            return
        except ValueError:
            self.dropped("not json", raw[:100])
            return
        digest = hashlib.sha256(channel + b"\n" + raw).hexdigest()[:32]
        now = self.clock()
        self.pending.append((now, digest, emitted))
        if len(self.pending) > QUEUE_LIMIT:
            self.pending.popleft()
            self.dropped("ingest queue full", raw[:100])
        if self.leader:
            self.wake.set()
        else:
            self._forget_before(now - BUFFER_SECONDS)

    def _forget_before(self, t: float) -> None:
        while self.pending and self.pending[0][0] < t:
            self.pending.popleft()

    async def run(self) -> None:
        renewing = asyncio.create_task(self._hold_lease())
        try:
            await self._consume()
        finally:
            renewing.cancel()

    async def _hold_lease(self) -> None:
        while True:
            try:
                held = await self.lease()
            except asyncio.CancelledError:
                raise
            except Exception:
                held = False  # Redis away: nobody can claim either
            if held and not self.leader:
                log.info("this node now stores what stock emitters send")
            self.leader = held
            if held:
                self.wake.set()
            await asyncio.sleep(RENEW_EVERY)

    async def _consume(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.leader and self.pending:
                _, digest, emitted = self.pending.popleft()
                try:
                    if await self.claim("realtime:ingested:" + digest):
                        for e in emitted:
                            await self._store(e)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # Redis or the database: this message is not stored
                    log.warning("could not ingest an emitted message: %s", exc)

    async def _store(self, e: Emitted) -> None:
        try:
            body = self._schema.load({"userId": e.user_id, "message": e.message})
        except ValidationError as exc:
            self.dropped("invalid", exc.messages)
            return
        message = body["message"]
        try:
            await self.publish(body["userId"], message, message["type"] == "progress_update")
        except DomainError as exc:
            self.dropped("refused", exc)


def python_decoder(raw: bytes) -> Callable[[], list[Emitted]]:
    def decode() -> list[Emitted]:
        data = codec.loads(raw)
        if not isinstance(data, dict):
            raise Dropped("not an emit")
        return from_python(data)

    return decode
