"""Fanout, the delivery core, against fakes of its two ports: the wire and the store."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from realtime.delivery.fanout import Fanout
from realtime.domain.messages import Replay
from realtime.metrics import Metrics
from realtime.store.stream import Read

EPOCH = "e1"


class FakeWire:
    """Records every event put on the wire, with the connections it went to."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, int | None]] = []  # (sid, event, seq)
        self.rooms: dict[str, str] = {}

    async def emit_to(self, event: str, data: Any, sids: Iterable[str]) -> None:
        for sid in sids:
            self.sent.append((sid, event, data.get("seq")))

    async def enter_room(self, sid: str, room: str) -> None:
        self.rooms[sid] = room

    def seqs(self, sid: str) -> list[int]:
        return [seq for s, _, seq in self.sent if s == sid and seq is not None]


class FakeStore:
    """A user's stream in memory: seq n is message n."""

    def __init__(self) -> None:
        self.streams: dict[str, list[dict[str, Any]]] = {}

    def store(self, user_id: str, n: int) -> list[dict[str, Any]]:
        stream = self.streams.setdefault(user_id, [])
        added = []
        for _ in range(n):
            seq = len(stream) + 1
            m = {"type": "progress_update", "jobId": f"j{seq}", "seq": seq, "ts": None}
            stream.append(m)
            added.append(m)
        return added

    async def read_after(self, user_id: str, after: int, upto: int) -> Read:
        stream = self.streams.get(user_id, [])
        return Read([m for m in stream if after < m["seq"] <= upto], True)

    async def replay(self, user_id: str, last_seq: int | None, epoch: str | None) -> Replay:
        stream = self.streams.get(user_id, [])
        last = len(stream)
        if last_seq is None:
            snap = {"type": "snapshot", "jobs": [], "lastSeq": last, "epoch": EPOCH}
            return Replay(snap, [], last + 1, last, EPOCH, True, 0, 0.0)
        after = [m for m in stream if m["seq"] > last_seq]
        return Replay(None, after, last_seq + 1, last, EPOCH, True, 0, 0.0)


def make() -> tuple[Fanout, FakeWire, FakeStore]:
    wire, store = FakeWire(), FakeStore()
    return Fanout(wire, store, Metrics()), wire, store


async def connect(fanout: Fanout, sid: str, user: str, last_seq: int | None = None) -> None:
    fanout.reserve(user)
    await fanout.attach(sid, user, last_seq, EPOCH if last_seq is not None else None)


async def test_a_live_message_is_sent_once_as_cursor_plus_one() -> None:
    fanout, wire, store = make()
    await connect(fanout, "tab1", "ann")
    for m in store.store("ann", 3):
        await fanout.deliver("ann", m)
    await fanout.deliver("ann", store.streams["ann"][1])  # a duplicate: dropped
    assert wire.seqs("tab1") == [1, 2, 3]
    assert wire.rooms == {"tab1": "user:ann"}


async def test_a_gap_is_filled_from_the_store_before_the_later_message() -> None:
    fanout, wire, store = make()
    await connect(fanout, "tab1", "ann")
    stored = store.store("ann", 5)
    await fanout.deliver("ann", stored[0])
    await fanout.deliver("ann", stored[4])  # 2-4 never arrived live
    assert wire.seqs("tab1") == [1, 2, 3, 4, 5]
    await fanout.deliver("ann", stored[3])
    assert wire.seqs("tab1") == [1, 2, 3, 4, 5], "late arrivals are duplicates now"


async def test_a_replay_reaches_the_new_tab_then_brings_the_other_tabs_up() -> None:
    fanout, wire, store = make()
    await connect(fanout, "tab1", "ann")
    stored = store.store("ann", 4)
    await fanout.deliver("ann", stored[0])  # tab1 has seen 1; 2-4 are only in the store
    await connect(fanout, "tab2", "ann", last_seq=0)
    assert wire.seqs("tab2") == [1, 2, 3, 4], "the replay"
    assert [e for s, e, _ in wire.sent if s == "tab2"][-1] == "replay_complete"
    assert wire.seqs("tab1") == [1, 2, 3, 4], "brought up to the replay's end"
    more = store.store("ann", 1)
    await fanout.deliver("ann", more[0])
    assert wire.seqs("tab1")[-1] == wire.seqs("tab2")[-1] == 5, "one cursor for both tabs"


async def test_messages_of_a_user_with_no_connection_here_are_ignored() -> None:
    fanout, wire, store = make()
    await connect(fanout, "tab1", "ann")
    for m in store.store("bob", 2):
        await fanout.deliver("bob", m)
    assert [s for s, _, seq in wire.sent if seq is not None] == []
    fanout.detach("tab1", "ann")
    assert fanout.channels == {}


async def test_catch_up_sends_what_the_store_holds_beyond_the_cursor() -> None:
    fanout, wire, store = make()
    await connect(fanout, "tab1", "ann")
    store.store("ann", 3)
    await fanout.catch_up("ann", 3)
    await fanout.catch_up("ann", 3)
    assert wire.seqs("tab1") == [1, 2, 3]
