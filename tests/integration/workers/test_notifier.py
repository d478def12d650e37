"""QueueNotifier on SQLite and PostgreSQL: who gets a queue_update, no duplicates, the cost."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from sqlalchemy import event, insert, select, update

from realtime.broadcast.base import NoBroadcast
from realtime.broadcast.outbox import Outbox
from realtime.domain.job import Job, Status
from realtime.domain.times import iso
from realtime.store.claims import Claims
from realtime.store.engine import create_engine
from realtime.store.ledger import Ledger
from realtime.store.stream import Stored
from realtime.store.tables import jobs, messages, streams
from realtime.workers.notifier import QueueNotifier, _Due
from tests.support import Clock, claim, stored_seqs, submit_jobs

VIDEO = "https://youtu.be/dQw4w9WgXcQ"


class Recorder(NoBroadcast):
    """A broadcast that remembers what it was asked to send."""

    def __init__(self) -> None:
        self.sent: list[Stored] = []

    async def send(self, stored: Any) -> None:
        self.sent.extend(stored)


def start(job: Job, now: float) -> dict[str, Any]:
    return {
        "type": "progress_update",
        "jobId": job.job_id,
        "stage": "url_validation",
        "progress": 0,
    }


async def queue_updates(ledger: Ledger) -> list[dict[str, Any]]:
    async with ledger.engine.connect() as conn:
        rows = await conn.execute(
            select(messages.c.payload)
            .where(messages.c.type == "queue_update")
            .order_by(messages.c.created_at)
        )
        return [json.loads(r.payload) for r in rows]


async def test_a_dequeue_updates_exactly_the_jobs_that_moved(ledger: Ledger, clock: Clock) -> None:
    ids = await submit_jobs(ledger, clock, 5, users=3)
    sent = Recorder()
    notifier = QueueNotifier(ledger, Outbox(sent), interval=0.5)
    assert await notifier.pass_once() == 0, "nothing moved since the submits"
    claimed = await claim(Claims(ledger), "w", start)
    assert claimed is not None and claimed.job_id == ids[0]
    before = len(await queue_updates(ledger))
    assert await notifier.pass_once() == 4
    new = (await queue_updates(ledger))[before:]
    assert {m["jobId"]: m["position"] for m in new} == {ids[i]: i for i in range(1, 5)}
    assert all(m["queueLength"] == 4 for m in new)
    assert ids[0] not in {m["jobId"] for m in new}, "a job that left the queue gets none"
    assert [s.payload for s in sent.sent] == new, "stored, then handed to fan-out"
    assert await notifier.pass_once() == 0, "no news, no message"
    # a cancel in the middle moves only the jobs behind it
    await ledger.cancel("user2", ids[2])
    assert await notifier.pass_once() == 2
    last = (await queue_updates(ledger))[-2:]
    assert {m["jobId"]: m["position"] for m in last} == {ids[3]: 2, ids[4]: 3}


async def test_estimated_start_updates_only_when_it_moves_enough(
    ledger: Ledger, clock: Clock
) -> None:
    ids = await submit_jobs(ledger, clock, 4, users=3)
    pipeline = Claims(ledger)
    notifier = QueueNotifier(ledger, Outbox(NoBroadcast()))
    await pipeline.heartbeat("w1", concurrency=1, speed=1.0)
    assert await notifier.pass_once() == 4, "a live worker: the estimates appear"
    updates = {m["jobId"]: m for m in (await queue_updates(ledger))[-4:]}
    assert updates[ids[0]]["estimatedWaitSeconds"] == 0.0
    assert updates[ids[3]]["estimatedWaitSeconds"] == pytest.approx(180.0)
    assert updates[ids[3]]["estimatedStart"] == iso(clock.now + 180.0)
    # time passes as predicted: counting down is no reason to send anything
    clock.now += 5
    await pipeline.heartbeat("w1", concurrency=1, speed=1.0)
    assert await notifier.pass_once() == 0
    # a second worker halves the waits: a move of more than max(10 s, 25 %)
    await pipeline.heartbeat("w2", concurrency=1, speed=1.0)
    assert await notifier.pass_once() == 3  # positions 2-4; position 1 still starts now
    # the workers die: the estimates become unknown
    clock.now += 20
    assert await notifier.pass_once() == 4
    assert all(m["estimatedStart"] is None for m in (await queue_updates(ledger))[-4:])


async def test_several_notifiers_store_no_duplicates(
    ledger: Ledger, clock: Clock, db_url: str
) -> None:
    ids = await submit_jobs(ledger, clock, 30, users=5)
    for _ in range(3):
        assert await claim(Claims(ledger), "w", start) is not None
    engines = [create_engine(db_url) for _ in range(4)]
    try:
        notifiers = [
            QueueNotifier(
                Ledger(e, history_size=1000, history_ttl=86400, clock=clock),
                Outbox(NoBroadcast()),
                chunk=7,
            )
            for e in engines
        ]
        counts = await asyncio.gather(*(n.pass_once() for n in notifiers))
        assert sum(counts) == 27, counts
        assert sum(await asyncio.gather(*(n.pass_once() for n in notifiers))) == 0
    finally:
        for e in engines:
            await e.dispose()
    per_job: dict[str, list[int]] = {}
    for m in await queue_updates(ledger):
        per_job.setdefault(m["jobId"], []).append(m["position"])
    for i, job_id in enumerate(ids[3:]):
        assert per_job[job_id] == [i + 4, i + 1], "one update per move, positions only go down"
    for u in range(5):
        seqs = await stored_seqs(ledger.engine, f"user{u}")
        assert list(seqs) == list(range(1, len(seqs) + 1)), "seq gap-free per user"


async def test_a_decision_on_stale_data_is_dropped(ledger: Ledger, clock: Clock) -> None:
    [_, b] = await submit_jobs(ledger, clock, 2, users=3)
    notifier = QueueNotifier(ledger, Outbox(NoBroadcast()))
    found = await ledger.job(b)
    assert found is not None
    job = found[0]
    # the job got a message after the decision was made (its updated_seq moved on)
    stale = _Due(b, job.user_id, job.updated_seq - 1, 1, None)
    assert await ledger.hops.write(notifier._store, [stale], 2) == []
    # and a job that left the queue meanwhile is not written either
    await ledger.cancel(job.user_id, b)
    found = await ledger.job(b)
    assert found is not None
    gone = _Due(b, job.user_id, found[0].updated_seq, 1, None)
    assert await ledger.hops.write(notifier._store, [gone], 1) == []


async def test_wake_runs_a_pass_at_once(ledger: Ledger, clock: Clock) -> None:
    ids = await submit_jobs(ledger, clock, 3, users=3)
    notifier = QueueNotifier(ledger, Outbox(NoBroadcast()), interval=30.0)
    task = asyncio.create_task(notifier.run())
    try:
        await asyncio.sleep(0.2)  # the first pass finds nothing
        assert await claim(Claims(ledger), "w", start) is not None
        began = time.monotonic()
        notifier.wake.set()
        for _ in range(100):
            found = await ledger.job(ids[2])
            assert found is not None
            if found[0].last_message and found[0].last_message["position"] == 2:
                break
            await asyncio.sleep(0.02)
        assert time.monotonic() - began < 1.0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _fill(ledger: Ledger, clock: Clock, n_jobs: int, n_users: int) -> list[str]:
    """n_jobs queued jobs of n_users users, each with its stored queue_update, inserted in
    bulk (submitting them one by one would be the slow part of the test)."""
    now = clock.now
    per_user: dict[str, int] = {}
    rows = []
    ids = []
    for i in range(n_jobs):
        user = f"u{i % n_users}"
        seq = per_user[user] = per_user.get(user, 0) + 1
        job_id = f"job{i:06d}"
        ids.append(job_id)
        msg = {
            "type": "queue_update",
            "jobId": job_id,
            "position": i + 1,
            "queueLength": n_jobs,
            "estimatedWaitSeconds": None,
            "estimatedStart": None,
            "seq": seq,
            "ts": iso(now),
        }
        rows.append(
            {
                "job_id": job_id,
                "user_id": user,
                "video_url": VIDEO,
                "title": None,
                "status": "queued",
                "stage": None,
                "progress": 0,
                "attempt": 0,
                "max_attempts": 3,
                "error": None,
                "error_code": None,
                "submitted_at": now + i * 0.001,
                "started_at": None,
                "stage_started_at": None,
                "finished_at": None,
                "retry_at": None,
                "estimated_completion": None,
                "worker_id": None,
                "heartbeat_at": None,
                "result": None,
                "last_message": json.dumps(msg),
                "updated_seq": seq,
            }
        )
    async with ledger.engine.begin() as conn:
        await conn.execute(
            insert(streams),
            [
                {"user_id": u, "epoch": "e", "last_seq": n, "acked_seq": 0, "created_at": now}
                for u, n in per_user.items()
            ],
        )
        for i in range(0, len(rows), 1000):
            await conn.execute(insert(jobs), rows[i : i + 1000])
    return ids


async def test_ten_thousand_queued_jobs_cost_one_cheap_pass(
    ledger: Ledger, clock: Clock, db_url: str
) -> None:
    """The figure to watch: one pass after a dequeue with 10,000 queued jobs of 1,000 users
    stores 9,999 queue_updates in a bounded number of statements."""
    ids = await _fill(ledger, clock, 10_000, 1_000)
    statements = 0

    def count(*_: Any) -> None:
        nonlocal statements
        statements += 1

    event.listen(ledger.engine.sync_engine, "before_cursor_execute", count)
    notifier = QueueNotifier(ledger, Outbox(NoBroadcast()))
    t0 = time.perf_counter()
    assert await notifier.pass_once() == 0
    cold = time.perf_counter() - t0, statements
    statements = 0
    t0 = time.perf_counter()
    assert await notifier.pass_once() == 0
    steady = time.perf_counter() - t0, statements
    async with ledger.engine.begin() as conn:  # the head leaves the queue
        await conn.execute(update(jobs).where(jobs.c.job_id == ids[0]).values(status="processing"))
    statements = 0
    t0 = time.perf_counter()
    stored = await notifier.pass_once()
    dequeue = time.perf_counter() - t0, statements
    event.remove(ledger.engine.sync_engine, "before_cursor_execute", count)
    backend = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    print(
        f"\n[queue 10,000 jobs / 1,000 users, {backend}] "
        f"pass after a dequeue: {dequeue[0]:.3f} s, {dequeue[1]} statements, {stored} updates; "
        f"cold pass (reads every last message): {cold[0]:.3f} s, {cold[1]} statements; "
        f"steady pass: {steady[0]:.3f} s, {steady[1]} statements"
    )
    assert stored == 9_999
    assert dequeue[1] < 3_000, "batched: far fewer statements than jobs"
    assert steady[1] <= 6
    found = await ledger.job(ids[-1])
    assert found is not None and found[0].last_message is not None
    assert found[0].last_message["position"] == 9_999 and found[0].status == Status.QUEUED
    async with ledger.engine.connect() as conn:
        last = (
            await conn.execute(select(streams.c.last_seq).where(streams.c.user_id == "u999"))
        ).scalar()
        seqs = (
            (
                await conn.execute(
                    select(messages.c.seq)
                    .where(messages.c.user_id == "u999")
                    .order_by(messages.c.seq)
                )
            )
            .scalars()
            .all()
        )
    assert last == 20 and list(seqs) == list(range(11, 21))
