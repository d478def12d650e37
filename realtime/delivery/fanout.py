"""Per-user ordered delivery on this node.

Every user with a connection here has a `UserChannel`: the seq this node has delivered up to
(`cursor`) and the connections that are live. Everything sent to a user on this node happens
under the channel's lock, which gives the contract's guarantees:

- all live connections of a user share one cursor, so a room emit is right for each of them;
- a message is sent only as cursor + 1: a later one first fills the gap from the store, an
  earlier or equal one is a duplicate and is dropped;
- a connecting client is replayed to (and enters the room) under the lock, so no live message
  reaches it before its `replay_complete`, and the room is then brought up to the replay's end.

Messages arrive here from in-process publishers, from Redis (fanout across nodes), and from
the `Follower` (follower.py), which polls the store for messages this node never heard about (another
process published with no Redis configured, or Redis lost them). The store is the truth;
the live paths only make delivery fast.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..domain.messages import Replay, room_of
from ..domain.times import parse_iso
from ..metrics import Metrics
from ..store.stream import Read
from .wire import FastEmitter

log = logging.getLogger(__name__)


class Source(Protocol):
    """Where delivery reads what it sends: the store (store.Ledger)."""

    async def replay(self, user_id: str, last_seq: int | None, epoch: str | None) -> Replay: ...

    async def read_after(self, user_id: str, after: int, upto: int) -> Read: ...

    async def snapshot(self, user_id: str) -> dict[str, Any]: ...


class Interest(Protocol):
    """Told when a user gets its first connection on this node and when its last one leaves
    (the Redis subscriber subscribes to that user's channel meanwhile)."""

    def want(self, user_id: str) -> None: ...

    def unwant(self, user_id: str) -> None: ...


class Emitter(Protocol):
    """Puts one event on the wire to some connections of this node, in call order."""

    async def emit_to(self, event: str, data: Any, sids: Iterable[str]) -> None: ...

    async def enter_room(self, sid: str, room: str) -> None: ...


class SocketIOEmitter:
    """Node-local sends: framed once for all WebSocket connections (wire.FastEmitter), through
    python-socketio for the others, never through Redis (every node delivers from its own
    subscription)."""

    def __init__(self, sio: Any) -> None:
        self.sio = sio
        self.fast = FastEmitter(sio)

    async def emit_to(self, event: str, data: Any, sids: Iterable[str]) -> None:
        await self.fast.emit_to(event, data, sids)

    async def enter_room(self, sid: str, room: str) -> None:
        await self.sio.enter_room(sid, room)


@dataclass
class UserChannel:
    user_id: str
    cursor: int = 0
    epoch: str | None = None
    sids: set[str] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Connections accepted but not yet attached; counted against the per-user cap.
    pending: int = 0

    @property
    def room(self) -> str:
        return room_of(self.user_id)


class Fanout:
    def __init__(self, emitter: Emitter, ledger: Source, metrics: Metrics) -> None:
        self.emitter = emitter
        self.ledger = ledger
        self.metrics = metrics
        self.channels: dict[str, UserChannel] = {}
        self.interest: Interest | None = None

    def connections(self, user_id: str) -> int:
        ch = self.channels.get(user_id)
        return len(ch.sids) + ch.pending if ch else 0

    def reserve(self, user_id: str) -> UserChannel:
        ch = self.channels.get(user_id)
        if ch is None:
            ch = self.channels[user_id] = UserChannel(user_id)
            if self.interest is not None:
                self.interest.want(user_id)
        ch.pending += 1
        return ch

    # ---- connections ---------------------------------------------------------------------

    async def attach(self, sid: str, user_id: str, last_seq: int | None, epoch: str | None) -> None:
        """Replay to a new connection and make it live. Call after `reserve`."""
        ch = self.channels[user_id]
        try:
            async with ch.lock:
                await self.emitter.enter_room(sid, ch.room)
                replay = await self.ledger.replay(user_id, last_seq, epoch)
                await self._send_replay(sid, ch, replay)
                ch.sids.add(sid)
        finally:
            ch.pending -= 1
            self._forget_if_empty(ch)

    async def resume(self, sid: str, user_id: str, last_seq: int, epoch: str | None) -> None:
        """Replay again from `last_seq` to a live connection that saw a gap."""
        ch = self.channels.get(user_id)
        if ch is None or sid not in ch.sids:
            return
        async with ch.lock:
            replay = await self.ledger.replay(user_id, last_seq, epoch)
            await self._send_replay(sid, ch, replay)

    def detach(self, sid: str, user_id: str) -> None:
        ch = self.channels.get(user_id)
        if ch is not None:
            ch.sids.discard(sid)
            self._forget_if_empty(ch)

    def _forget_if_empty(self, ch: UserChannel) -> None:
        if (
            not ch.sids
            and ch.pending <= 0
            and not ch.lock.locked()
            and self.channels.pop(ch.user_id, None) is not None
            and self.interest is not None
        ):
            self.interest.unwant(ch.user_id)

    async def _send_replay(self, sid: str, ch: UserChannel, replay: Replay) -> None:
        one = (sid,)
        if replay.snapshot is not None:
            await self.emitter.emit_to("snapshot", replay.snapshot, one)
        for m in replay.messages:
            await self.emitter.emit_to(m["type"], m, one)
        self.metrics.replayed.inc(len(replay.messages))
        await self.emitter.emit_to("replay_complete", replay.complete, one)
        to_seq, epoch = replay.to_seq, replay.epoch
        others = [s for s in ch.sids if s != sid]
        if ch.epoch is not None and ch.epoch != epoch:
            ch.cursor = 0  # the stream was reset: the others re-sync through the follower
        ch.epoch = epoch
        if others and ch.cursor < to_seq:
            # The replay read further than this node had delivered live: bring the others up to
            # the same point so that every live connection shares one cursor again.
            read = await self.ledger.read_after(ch.user_id, ch.cursor, to_seq)
            for m in read.messages:
                await self._emit_live(ch, m, skip=[sid])
        ch.cursor = max(ch.cursor, to_seq)

    # ---- live delivery ---------------------------------------------------------------------

    async def deliver(self, user_id: str, payload: dict[str, Any]) -> None:
        """One stored message for `user_id`; sent to this node's live connections in order."""
        ch = self.channels.get(user_id)
        if ch is None:
            return
        async with ch.lock:
            seq = int(payload["seq"])
            if seq <= ch.cursor or not ch.sids:
                return
            if seq > ch.cursor + 1:
                read = await self.ledger.read_after(user_id, ch.cursor, seq - 1)
                for m in read.messages:
                    await self._emit_live(ch, m)
            await self._emit_live(ch, payload)

    async def deliver_from_store(self, user_id: str, hint: int) -> None:
        """A message this node cannot trust says the user's stream reached `hint`: send what
        the store holds up to there (never more), as the store has it."""
        ch = self.channels.get(user_id)
        if ch is None or not ch.sids or hint <= ch.cursor:
            return
        async with ch.lock:
            if hint <= ch.cursor:
                return
            read = await self.ledger.read_after(user_id, ch.cursor, hint)
            for m in read.messages:
                await self._emit_live(ch, m)

    async def catch_up(self, user_id: str, last_seq: int) -> None:
        """Send whatever this node has not delivered up to `last_seq`, from the store."""
        ch = self.channels.get(user_id)
        # A connection attaching (the lock held, no live sid yet) may have read its replay
        # before `last_seq` was stored: wait for it, then fill what it missed.
        if ch is None or ch.cursor >= last_seq or not (ch.sids or ch.lock.locked()):
            return
        async with ch.lock:
            if ch.cursor >= last_seq or not ch.sids:
                return
            read = await self.ledger.read_after(user_id, ch.cursor, last_seq)
            for m in read.messages:
                await self._emit_live(ch, m)

    async def _emit_live(
        self, ch: UserChannel, m: dict[str, Any], skip: list[str] | None = None
    ) -> None:
        seq = int(m["seq"])
        if seq <= ch.cursor and skip is None:
            return
        targets = [s for s in ch.sids if s not in skip] if skip else ch.sids
        await self.emitter.emit_to(m["type"], m, targets)
        self.metrics.sent.inc(len(targets))
        stored_at = parse_iso(m.get("ts"))
        if stored_at is not None:
            self.metrics.latency.observe(max(time.time() - stored_at, 0.0))
        if skip is None:
            ch.cursor = seq

    async def refresh(self, user_id: str) -> None:
        """A fresh snapshot (and an empty replay_complete) to every connection of the user:
        their job list changed without a message. What they have not seen is sent first."""
        ch = self.channels.get(user_id)
        if ch is None or not ch.sids:
            return
        async with ch.lock:
            replay = await self.ledger.replay(user_id, ch.cursor, ch.epoch)
            for m in replay.messages:
                await self._emit_live(ch, m)
            snapshot = await self.ledger.snapshot(user_id)
            done = Replay(
                None, [], replay.to_seq + 1, replay.to_seq, replay.epoch, True, 0, time.time()
            )
            for sid in ch.sids:
                await self.emitter.emit_to("snapshot", snapshot, (sid,))
                await self.emitter.emit_to("replay_complete", done.complete, (sid,))
            ch.epoch = replay.epoch
            ch.cursor = max(ch.cursor, replay.to_seq)

    async def reset_epoch(self, user_id: str) -> None:
        """The stream was recreated under a new epoch: every connection gets a snapshot."""
        ch = self.channels.get(user_id)
        if ch is None:
            return
        async with ch.lock:
            # Asked with the old epoch, the replay is a snapshot + recovered: false; every
            # connection gets one, and only then does the room move to the new stream.
            replay = await self.ledger.replay(user_id, ch.cursor, ch.epoch)
            for sid in ch.sids:
                if replay.snapshot is not None:
                    await self.emitter.emit_to("snapshot", replay.snapshot, (sid,))
                await self.emitter.emit_to("replay_complete", replay.complete, (sid,))
            ch.epoch = replay.epoch
            ch.cursor = replay.to_seq
