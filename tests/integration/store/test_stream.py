"""The stream store on SQLite and PostgreSQL: gap-free seq under concurrent publisher processes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from realtime.store import stream
from realtime.store.engine import create_engine
from realtime.store.ledger import Ledger
from realtime.store.migrate import migrate
from tests.support import append_raw, stored_seqs


async def test_trim_keeps_history_size_and_reads_report_gaps(db_url: str) -> None:
    engine = create_engine(db_url)
    await migrate(engine)
    ledger = Ledger(engine, history_size=10, history_ttl=3600)
    for _ in range(130):
        await append_raw(ledger, "u", [{"type": "queue_update", "jobId": "j"}], time.time(), 10)
    count = await ledger.count_messages("u")
    assert 10 <= count <= 10 + stream.TRIM_EVERY
    old = await ledger.read_after("u", 5, 130)
    assert old.complete is False
    recent = await ledger.read_after("u", 125, 130)
    assert recent.complete and [m["seq"] for m in recent.messages] == [126, 127, 128, 129, 130]
    await engine.dispose()


async def test_expired_messages_are_trimmed_and_replay_falls_back(db_url: str) -> None:
    engine = create_engine(db_url)
    await migrate(engine)
    now = [1000.0]
    ledger = Ledger(engine, history_size=100, history_ttl=60, clock=lambda: now[0])
    await ledger.publish(
        "v",
        {"type": "progress_update", "jobId": "a", "stage": "indexing", "progress": 1},
        create=True,
    )
    now[0] += 120
    await ledger.publish(
        "v", {"type": "progress_update", "jobId": "a", "stage": "indexing", "progress": 2}
    )
    assert await ledger.trim_expired() == 1
    snap = await ledger.snapshot("v")
    replay: Any = await ledger.replay("v", 0, snap["epoch"])
    assert replay.snapshot is not None and replay.complete["recovered"] is False
    ok: Any = await ledger.replay("v", 1, snap["epoch"])
    assert ok.snapshot is None and [m["seq"] for m in ok.messages] == [2]
    await engine.dispose()


async def test_group_commit_shares_transactions_and_refuses_one_by_one(db_url: str) -> None:
    from realtime.domain.errors import DomainError

    engine = create_engine(db_url)
    await migrate(engine)
    ledger = Ledger(engine, history_size=1000, history_ttl=3600)

    def msg(job: str, progress: int) -> dict[str, Any]:
        return {"type": "progress_update", "jobId": job, "stage": "indexing", "progress": progress}

    good = [ledger.publish(f"u{i % 20}", msg(f"j{i}", 50), create=True) for i in range(300)]
    bad = [ledger.publish("u1", msg("never-created", 1)), ledger.publish("u2", msg("j1", 60))]
    results = await asyncio.gather(*good, *bad, return_exceptions=True)
    assert all(not isinstance(r, BaseException) for r in results[:300])
    assert all(isinstance(r, DomainError) for r in results[300:])
    assert ledger.committer.batches < 100  # many messages per transaction
    for u in range(20):
        seqs = await stored_seqs(engine, f"u{u}")
        assert list(seqs) == list(range(1, 16))
    await engine.dispose()


async def test_replays_taken_while_publishing_each_show_one_moment(ledger: Ledger) -> None:
    """Replays read without locks; each must still see the jobs exactly as of its lastSeq
    (a job newer than lastSeq would later be walked back by the live messages)."""

    def msg(job: str, progress: int) -> dict[str, Any]:
        return {"type": "progress_update", "jobId": job, "stage": "indexing", "progress": progress}

    jobs = [f"j{i}" for i in range(5)]
    for job in jobs:
        await ledger.publish("c", msg(job, 0), create=True)
    replays: list[Any] = []

    async def publish() -> None:
        for progress in range(1, 100):
            await asyncio.gather(*(ledger.publish("c", msg(job, progress)) for job in jobs))

    async def watch(done: asyncio.Task[None]) -> None:
        while not done.done():
            replays.append(await ledger.replay("c", None, None))

    publishing = asyncio.create_task(publish())
    await asyncio.gather(publishing, watch(publishing), watch(publishing))
    stored = (await ledger.read_after("c", 0, 5 * 100)).messages
    assert len(replays) > 10
    for replay in replays:
        last_seq = replay.snapshot["lastSeq"]
        as_of = {m["jobId"]: m["progress"] for m in stored if m["seq"] <= last_seq}
        assert {j["jobId"]: j["progress"] for j in replay.snapshot["jobs"]} == as_of
        # The offline queue (nothing acked) runs exactly up to the same moment.
        assert replay.complete["toSeq"] == last_seq
        assert replay.messages[-1]["seq"] == last_seq
