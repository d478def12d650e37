"""Claiming, guarded publishing, heartbeats and the stalled-job sweep on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select

from realtime.domain.job import STAGE_MESSAGES, Job, Status
from realtime.domain.times import iso
from realtime.store.claims import Claims, Lost
from realtime.store.engine import create_engine
from realtime.store.ledger import Ledger
from realtime.store.tables import workers
from tests.support import Clock, claim, stored_seqs, submit_jobs

VIDEO = "https://youtu.be/dQw4w9WgXcQ"


@pytest.fixture
def pipeline(ledger: Ledger) -> Claims:
    return Claims(ledger)


def start(job: Job, now: float) -> dict[str, Any]:
    stage = job.stage if job.status == Status.RETRYING and job.stage else "url_validation"
    return {"type": "progress_update", "jobId": job.job_id, "stage": stage, "progress": 0}


async def status(ledger: Ledger, job_id: str) -> Job:
    found = await ledger.job(job_id)
    assert found is not None
    return found[0]


async def test_concurrent_claims_never_share_a_job(
    ledger: Ledger, clock: Clock, db_url: str
) -> None:
    ids = await submit_jobs(ledger, clock, 24, users=4)
    # eight workers, each with its own engine (as separate processes would have)
    engines = [create_engine(db_url) for _ in range(8)]
    claimed: list[tuple[int, str]] = []

    async def work(i: int) -> None:
        p = Claims(Ledger(engines[i], history_size=1000, history_ttl=86400, clock=clock))
        for _ in range(30):  # bounded: 24 jobs among 8 workers
            job = await claim(p, f"w{i}", start)
            if job is None:
                return
            claimed.append((i, job.job_id))

    try:
        await asyncio.wait_for(asyncio.gather(*(work(i) for i in range(8))), 60)
    finally:
        for e in engines:
            await e.dispose()
    got = [j for _, j in claimed]
    assert sorted(got) == sorted(ids), "every job claimed exactly once"
    for job_id in ids:
        job = await status(ledger, job_id)
        assert job.status == Status.PROCESSING and job.attempt == 1 and job.worker_id
    # seq stays gap-free per user
    for u in range(4):
        seqs = await stored_seqs(ledger.engine, f"user{u}")
        assert list(seqs) == list(range(1, len(seqs) + 1))


async def test_claims_follow_submit_order(pipeline: Claims, ledger: Ledger, clock: Clock) -> None:
    ids = await submit_jobs(ledger, clock, 5)
    order = []
    for _ in range(5):
        job = await claim(pipeline, "w", start)
        assert job is not None
        order.append(job.job_id)
    assert order == ids
    assert await claim(pipeline, "w", start) is None


async def test_the_claim_stores_the_first_progress_update(
    pipeline: Claims, ledger: Ledger, clock: Clock
) -> None:
    [job_id] = await submit_jobs(ledger, clock, 1)
    job = await claim(pipeline, "w1", start)
    assert job is not None and job.job_id == job_id
    stored = await status(ledger, job_id)
    assert stored.worker_id == "w1" and stored.heartbeat_at == clock.now
    assert stored.last_message is not None
    assert stored.last_message["type"] == "progress_update"
    assert stored.last_message["message"] == STAGE_MESSAGES["url_validation"]


async def test_a_due_retry_is_claimed_before_queued_jobs(
    pipeline: Claims, ledger: Ledger, clock: Clock
) -> None:
    first, second, third = await submit_jobs(ledger, clock, 3)
    job = await claim(pipeline, "w", start)
    assert job is not None and job.job_id == first
    await pipeline.publish(
        "w",
        job,
        {"type": "progress_update", "jobId": first, "stage": "content_analysis", "progress": 50},
    )
    job = await status(ledger, first)
    await pipeline.publish(
        "w",
        job,
        {
            "type": "processing_error",
            "jobId": first,
            "error": "x",
            "code": "stage_failed",
            "willRetry": True,
            "retryAt": iso(clock.now + 5),
        },
    )
    # not due yet: the queue goes first
    nxt = await claim(pipeline, "w", start)
    assert nxt is not None and nxt.job_id == second
    clock.now += 6
    retry = await claim(pipeline, "w", start)
    assert retry is not None and retry.job_id == first, "the due retry jumps the queue"
    assert retry.attempt == 2 and retry.stage == "content_analysis", "resumes at the failed stage"
    assert (await status(ledger, third)).status == Status.QUEUED


async def test_publish_for_a_cancelled_job_raises_and_stores_nothing(
    pipeline: Claims, ledger: Ledger, clock: Clock
) -> None:
    [job_id] = await submit_jobs(ledger, clock, 1)
    job = await claim(pipeline, "w", start)
    assert job is not None
    await ledger.cancel(job.user_id, job_id)
    before = await ledger.count_messages(job.user_id)
    with pytest.raises(Lost):
        await pipeline.publish(
            "w",
            job,
            {
                "type": "progress_update",
                "jobId": job_id,
                "stage": "metadata_extraction",
                "progress": 5,
            },
        )
    with pytest.raises(Lost):
        await pipeline.publish("w", job, {"type": "processing_complete", "jobId": job_id})
    assert await ledger.count_messages(job.user_id) == before
    assert await pipeline.still_held("w", [job]) == set()
    final = await status(ledger, job_id)
    assert final.status == Status.FAILED and final.error == "cancelled"


async def test_another_workers_job_cannot_be_published_for(
    pipeline: Claims, ledger: Ledger, clock: Clock
) -> None:
    await submit_jobs(ledger, clock, 1)
    job = await claim(pipeline, "w1", start)
    assert job is not None
    assert await pipeline.still_held("w1", [job]) == {job.job_id}
    assert await pipeline.still_held("w2", [job]) == set()
    with pytest.raises(Lost):
        await pipeline.publish("w2", job, {"type": "processing_complete", "jobId": job.job_id})


async def test_stalled_jobs_are_retried_then_failed(
    pipeline: Claims, ledger: Ledger, clock: Clock
) -> None:
    [job_id] = await submit_jobs(ledger, clock, 1)
    # a backend's own job, published without claiming: never swept
    await ledger.publish(
        "user9",
        {"type": "progress_update", "jobId": "external", "stage": "indexing", "progress": 10},
        create=True,
    )
    for attempt in (1, 2, 3):
        job = await claim(pipeline, "dead", start)
        assert job is not None and job.attempt == attempt
        clock.now += 10
        assert await pipeline.sweep(stall_after=15) == [], "10 s without a heartbeat is fine"
        clock.now += 6
        [stored] = await pipeline.sweep(stall_after=15, speed=2)
        p = stored.payload
        assert p["code"] == "worker_lost" and p["attempt"] == attempt and p["maxAttempts"] == 3
        if attempt < 3:
            assert p["willRetry"] is True
            assert p["retryAt"] == iso(clock.now + 10 * 2 ** (attempt - 1) / 2)
            clock.now += 60
    assert p["willRetry"] is False and p["retryAt"] is None
    assert (await status(ledger, job_id)).status == Status.FAILED
    assert (await status(ledger, "external")).status == Status.PROCESSING


async def test_heartbeats_keep_held_jobs_alive(
    pipeline: Claims, ledger: Ledger, clock: Clock
) -> None:
    await submit_jobs(ledger, clock, 1)
    await pipeline.heartbeat("w", concurrency=2, speed=3.0)
    job = await claim(pipeline, "w", start)
    assert job is not None
    for _ in range(5):
        clock.now += 10
        await pipeline.heartbeat("w", concurrency=2, speed=3.0)
        assert await pipeline.sweep(stall_after=15) == []
    async with ledger.engine.connect() as conn:
        row = (await conn.execute(select(workers).where(workers.c.worker_id == "w"))).one()
    assert row.concurrency == 2 and row.speed == 3.0 and row.heartbeat_at == clock.now
    await pipeline.unregister("w")
    async with ledger.engine.connect() as conn:
        n = (await conn.execute(select(func.count()).select_from(workers))).scalar()
    assert n == 0


async def test_live_workers_set_the_wait_estimates(
    pipeline: Claims, ledger: Ledger, clock: Clock
) -> None:
    await submit_jobs(ledger, clock, 1)
    wait = ledger.queue.estimate_wait
    assert await ledger.hops.read(wait, 0) is None  # no live worker
    await pipeline.heartbeat("w", concurrency=1, speed=4.0)
    assert await ledger.hops.read(wait, 0) == 0.0  # a free slot
    assert await ledger.hops.read(wait, 1) == pytest.approx(15.0)  # 60 s / 4
    job = await claim(pipeline, "w", start)
    assert job is not None
    await pipeline.publish(
        "w",
        job,
        {
            "type": "progress_update",
            "jobId": job.job_id,
            "stage": "url_validation",
            "progress": 1,
            "estimatedCompletion": iso(clock.now + 12),
        },
    )
    assert await ledger.hops.read(wait, 0) == pytest.approx(12.0)
    assert await ledger.hops.read(wait, 2) == pytest.approx(42.0)
    clock.now += 16  # the worker is no longer live: the one job seen running is the capacity
    assert await ledger.hops.read(wait, 0) == 0.0


async def test_positions_of_many_jobs_in_one_go(ledger: Ledger, clock: Clock) -> None:
    ids = await submit_jobs(ledger, clock, 7, users=3)
    snap = await ledger.snapshot("user1")
    positions = {j["jobId"]: j["position"] for j in snap["jobs"]}
    assert positions == {ids[i]: i + 1 for i in (1, 4)}
    status_ = await ledger.queue_status("user0")
    assert status_["queueLength"] == 7
    assert [j["position"] for j in status_["jobs"]] == [1, 4, 7]
