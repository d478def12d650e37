"""The demo worker end to end: a real server, real Socket.IO clients, the worker in-process at
high speed, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from aiohttp import ClientSession
from sqlalchemy import func, select

from realtime.broadcast.base import NoBroadcast
from realtime.config import Settings
from realtime.domain.job import DEMO, MAX_ATTEMPTS, STAGE_MESSAGES, WORK_STAGES, Job, Status
from realtime.domain.schemas import OUT_SCHEMAS
from realtime.domain.times import parse_iso
from realtime.store.claims import Claims, Lost
from realtime.store.engine import create_engine
from realtime.store.ledger import Ledger
from realtime.store.migrate import migrate
from realtime.store.tables import messages, stage_samples, workers
from realtime.tracker import Tracker
from realtime.web.keys import BROADCAST
from realtime.workers.demo import run_worker
from tests.support import Client, Server, claim, make_settings, until

VIDEO = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"


@asynccontextmanager
async def worker(settings: Settings, **kw: Any) -> AsyncIterator[asyncio.Task[None]]:
    """run_worker in-process until the block ends (then a clean stop, bounded)."""
    stop = asyncio.Event()
    options = {"concurrency": 2, "speed": 100.0, **kw}
    task = asyncio.create_task(run_worker(settings, stop=stop, **options))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


async def submit(http: ClientSession, server: Server, user: str, url: str = VIDEO) -> str:
    async with http.post(
        f"{server.url}/api/jobs", json={"videoUrl": url}, headers=server.headers(user)
    ) as r:
        assert r.status == 202, await r.text()
        return str((await r.json())["jobId"])


async def job_of(server: Server, job_id: str) -> Job:
    found = await server.ledger.job(job_id)
    assert found is not None
    return found[0]  # type: ignore[no-any-return]


async def all_finished(server: Server, ids: list[str]) -> bool:
    return all([(await job_of(server, j)).finished for j in ids])


def events_of(client: Client, job_id: str) -> list[tuple[str, dict[str, Any]]]:
    return [(n, d) for n, d in client.events if d.get("jobId") == job_id]


def check_shapes(client: Client) -> None:
    for name, data in client.events:
        OUT_SCHEMAS[name]().load(data)
    seqs = client.seqs()
    assert seqs == sorted(seqs) and seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs


def attempts(events: list[tuple[str, dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    """The progress_updates of each attempt (an error ends one)."""
    out: list[list[dict[str, Any]]] = [[]]
    for name, d in events:
        if name == "progress_update":
            out[-1].append(d)
        elif name == "processing_error":
            out.append([])
    return [a for a in out if a]


def check_attempt(progress: list[dict[str, Any]], first_stage: str) -> None:
    assert progress[0]["stage"] == first_stage
    values = [p["progress"] for p in progress]
    assert values == sorted(values), f"progress went down: {values}"
    stages = [p["stage"] for p in progress]
    order = [WORK_STAGES.index(s) for s in stages]
    assert order == sorted(order), f"stages out of order: {stages}"
    assert all(p["message"] == STAGE_MESSAGES[p["stage"]] for p in progress)
    assert all(p["estimatedCompletion"] is not None for p in progress)


async def test_jobs_of_several_users_move_through_the_queue(
    start_server: Any, settings: Settings, connect: Any, http: ClientSession
) -> None:
    server = await start_server(settings)
    users = ["ann", "ben", "cat"]
    clients = {u: await connect(server, u) for u in users}
    ids: list[tuple[str, str]] = []
    for i in range(7):  # queued before any worker is live
        user = users[i % 3]
        ids.append((user, await submit(http, server, user)))
    async with worker(settings, concurrency=2, speed=100):
        await until(lambda: all_finished(server, [j for _, j in ids]), 30, "every job to finish")
        for user, job_id in ids:
            c = clients[user]
            await c.wait_for(
                lambda c=c, j=job_id: any(n == "processing_complete" for n, _ in events_of(c, j)),
                10,
            )
    started: list[float] = []
    for user, job_id in ids:
        events = events_of(clients[user], job_id)
        names = [n for n, _ in events]
        first_progress = names.index("progress_update")
        assert set(names[:first_progress]) == {"queue_update"}
        assert "queue_update" not in names[first_progress:], "no queue_update after the start"
        positions = [d["position"] for n, d in events if n == "queue_update"]
        assert positions == sorted(positions, reverse=True), f"positions went up: {positions}"
        [progress] = attempts(events)
        check_attempt(progress, "url_validation")
        assert [s for s in WORK_STAGES if any(p["stage"] == s for p in progress)] == list(
            WORK_STAGES
        )
        assert names[-1] == "processing_complete"
        done = events[-1][1]
        assert done["result"]["mindmapId"] and done["durationSeconds"] > 0
        assert done["videoTitle"] == "YouTube video dQw4w9WgXcQ"
        job = await job_of(server, job_id)
        assert job.status == Status.COMPLETED and job.attempt == 1
        assert job.started_at is not None
        started.append(job.started_at)
    assert started == sorted(started), "claimed in submit order"
    for c in clients.values():
        check_shapes(c)


async def test_a_failed_stage_is_retried_and_then_succeeds(
    start_server: Any, settings: Settings, connect: Any, http: ClientSession
) -> None:
    server = await start_server(settings)
    client = await connect(server, "ann")
    job_id = await submit(http, server, "ann", VIDEO + "&fail=transcript_generation")
    async with worker(settings, speed=100):
        await until(lambda: all_finished(server, [job_id]), 20, "the job to finish")
        await client.wait_for(lambda: bool(client.of("processing_complete")), 10)
    events = events_of(client, job_id)
    [error] = [d for n, d in events if n == "processing_error"]
    assert error["code"] == "stage_failed" and error["attempt"] == 1
    assert error["maxAttempts"] == MAX_ATTEMPTS and error["willRetry"] is True
    retry_at, failed_at = parse_iso(error["retryAt"]), parse_iso(error["ts"])
    assert retry_at is not None and failed_at is not None
    assert 0 < retry_at - failed_at <= 10 / 100 + 0.01  # 10 s / speed
    first, second = attempts(events)
    check_attempt(first, "url_validation")
    assert first[-1]["stage"] == "transcript_generation"
    check_attempt(second, "transcript_generation")  # resumes at the failed stage
    resumed_at = parse_iso(second[0]["ts"])
    assert resumed_at is not None and resumed_at >= retry_at - 0.01
    assert events[-1][0] == "processing_complete"
    async with http.get(f"{server.url}/api/jobs/{job_id}", headers=server.headers("ann")) as r:
        state = await r.json()
    assert state["status"] == "completed" and state["attempt"] == 2 and state["error"] is None
    check_shapes(client)


async def test_an_always_failing_stage_fails_after_max_attempts(
    start_server: Any, settings: Settings, connect: Any, http: ClientSession
) -> None:
    server = await start_server(settings)
    client = await connect(server, "ann")
    job_id = await submit(http, server, "ann", VIDEO + "&fail=content_analysis:always")
    async with worker(settings, speed=100):
        await until(lambda: all_finished(server, [job_id]), 20, "the job to fail")
        await client.wait_for(lambda: len(client.of("processing_error")) == MAX_ATTEMPTS, 10)
        await asyncio.sleep(0.3)  # nothing more comes
    events = events_of(client, job_id)
    errors = [d for n, d in events if n == "processing_error"]
    assert [e["attempt"] for e in errors] == [1, 2, 3]
    assert [e["willRetry"] for e in errors] == [True, True, False]
    assert errors[-1]["retryAt"] is None and errors[0]["retryAt"] is not None
    assert events[-1] == ("processing_error", errors[-1])
    for i, progress in enumerate(attempts(events)):
        check_attempt(progress, "url_validation" if i == 0 else "content_analysis")
    job = await job_of(server, job_id)
    assert job.status == Status.FAILED and job.attempt == MAX_ATTEMPTS
    check_shapes(client)


async def test_cancel_a_queued_and_a_running_job(
    start_server: Any, settings: Settings, connect: Any, http: ClientSession
) -> None:
    server = await start_server(settings)
    client = await connect(server, "ann")
    a, b, c = [await submit(http, server, "ann") for _ in range(3)]
    async with worker(settings, concurrency=1, speed=10):  # a job takes about 6 s
        await until(lambda: job_status(server, a, Status.PROCESSING), 5, "A to start")
        # a queued job leaves the queue; the one behind it moves up
        async with http.post(
            f"{server.url}/api/jobs/{b}/cancel", headers=server.headers("ann")
        ) as r:
            assert r.status == 200 and (await r.json())["status"] == "failed"
        await client.wait_for(
            lambda: any(
                n == "queue_update" and d["position"] == 1 for n, d in events_of(client, c)
            ),
            3,
        )
        assert not [n for n, _ in events_of(client, b) if n == "progress_update"]
        # a running job: its slot frees and the next job starts within a second
        await asyncio.sleep(0.3)
        began = time.monotonic()
        async with http.post(
            f"{server.url}/api/jobs/{a}/cancel", headers=server.headers("ann")
        ) as r:
            assert r.status == 200
        await until(lambda: job_status(server, c, Status.PROCESSING), 3, "C to start")
        freed = time.monotonic() - began
        print(f"\n[cancel] running job cancelled -> next job started in {freed:.3f} s")
        assert freed < 1.0
        cancel_seq = (await job_of(server, a)).updated_seq
        await asyncio.sleep(0.6)
        async with server.ledger.engine.connect() as conn:
            after = (
                await conn.execute(
                    select(func.count())
                    .select_from(messages)
                    .where(messages.c.job_id == a, messages.c.seq > cancel_seq)
                )
            ).scalar()
        assert after == 0, "nothing stored for a cancelled job"
    for job_id in (a, b):
        [error] = [d for n, d in events_of(client, job_id) if n == "processing_error"]
        assert error["code"] == "cancelled" and error["willRetry"] is False
        assert events_of(client, job_id)[-1][1] == error
    async with http.post(f"{server.url}/api/jobs/{a}/cancel", headers=server.headers("ann")) as r:
        assert r.status == 409
    check_shapes(client)


async def job_status(server: Server, job_id: str, status: Status) -> bool:
    return (await job_of(server, job_id)).status == status


async def test_a_stalled_worker_is_detected_and_its_job_retried(settings: Settings) -> None:
    engine = create_engine(settings.database_url)
    await migrate(engine)
    ledger = Ledger(engine, history_size=1000, history_ttl=86400)
    try:
        job, _ = await ledger.submit("ann", VIDEO, pipeline=DEMO)
        ghost = Claims(ledger)
        held = await claim(ghost, "ghost", first_stage, pipeline=DEMO)
        assert held is not None  # ...and the ghost never heart-beats again
        async with worker(settings, speed=100, stall_after=0.5, heartbeat_interval=0.2):
            await until(lambda: finished(ledger, job.job_id), 10, "the job to be retried")
        found = await ledger.job(job.job_id)
        assert found is not None
        final = found[0]
        assert final.status == Status.COMPLETED and final.attempt == 2
        read = await ledger.read_after("ann", 0, None)  # type: ignore[arg-type]
        [lost] = [m for m in read.messages if m["type"] == "processing_error"]
        assert lost["code"] == "worker_lost" and lost["willRetry"] is True and lost["attempt"] == 1
        try:
            await ghost.publish("ghost", held, {"type": "processing_complete", "jobId": job.job_id})
        except Lost:
            pass
        else:
            raise AssertionError("a lost worker must not publish")
    finally:
        await engine.dispose()


def first_stage(job: Job, now: float) -> dict[str, Any]:
    return {
        "type": "progress_update",
        "jobId": job.job_id,
        "stage": "url_validation",
        "progress": 0,
    }


async def finished(ledger: Ledger, job_id: str) -> bool:
    found = await ledger.job(job_id)
    return found is not None and found[0].finished


async def all_done(ledger: Ledger, ids: list[str]) -> bool:
    return all([await finished(ledger, j) for j in ids])


async def test_estimates_are_within_2x_once_jobs_have_finished(settings: Settings) -> None:
    engine = create_engine(settings.database_url)
    await migrate(engine)
    ledger = Ledger(engine, history_size=1000, history_ttl=86400)
    speed = 60.0  # a job takes about a second
    try:
        async with worker(settings, concurrency=1, speed=speed, notify_interval=0.2):
            history = [
                (await ledger.submit("ann", VIDEO, pipeline=DEMO))[0].job_id for _ in range(2)
            ]
            await until(partial(all_done, ledger, history), 15, "the history jobs")
            subs = [await ledger.submit("ben", VIDEO, pipeline=DEMO) for _ in range(3)]
            measured = [job.job_id for job, _ in subs]
            await until(partial(all_done, ledger, measured), 15, "the measured jobs")
        async with engine.connect() as conn:
            n = (await conn.execute(select(func.count()).select_from(stage_samples))).scalar()
        assert n == 5 * len(WORK_STAGES)
        read = await ledger.read_after("ben", 0, None)  # type: ignore[arg-type]
        checked = 0
        for job, stored in subs:
            found = await ledger.job(job.job_id)
            assert found is not None
            final = found[0]
            assert final.started_at is not None and final.finished_at is not None
            wait = stored.payload["estimatedWaitSeconds"]
            real_wait = final.started_at - parse_iso(stored.payload["ts"])  # type: ignore[operator]
            if wait and wait > 0.3:
                print(f"\n[estimate] wait {wait:.2f} s predicted, {real_wait:.2f} s real")
                assert real_wait / 2 <= wait <= real_wait * 2, (wait, real_wait)
                checked += 1
            first = next(
                m
                for m in read.messages
                if m["type"] == "progress_update" and m["jobId"] == job.job_id
            )
            predicted = parse_iso(first["estimatedCompletion"]) - final.started_at  # type: ignore[operator]
            real = final.finished_at - final.started_at
            print(f"[estimate] run {predicted:.2f} s predicted, {real:.2f} s real")
            assert real / 2 <= predicted <= real * 2, (predicted, real)
        assert checked >= 2
    finally:
        await engine.dispose()


async def test_the_worker_registers_heartbeats_and_leaves(settings: Settings) -> None:
    engine = create_engine(settings.database_url)
    await migrate(engine)

    async def rows() -> list[Any]:
        async with engine.connect() as conn:
            return list((await conn.execute(select(workers))).all())

    try:
        async with worker(settings, concurrency=3, speed=7.0, heartbeat_interval=0.1):
            await until(lambda: _nonempty(rows), 5, "the worker's row")
            [row] = await rows()
            assert row.concurrency == 3 and row.speed == 7.0
            first = row.heartbeat_at
            await until(lambda: _later(rows, first), 3, "a heartbeat")
        assert await rows() == [], "a clean exit deletes the row"
    finally:
        await engine.dispose()


async def _nonempty(rows: Callable[[], Any]) -> bool:
    return bool(await rows())


async def _later(rows: Callable[[], Any], first: float) -> bool:
    return bool((await rows())[0].heartbeat_at > first)


async def test_the_demo_worker_never_takes_a_real_pipelines_job(
    start_server: Any, settings: Settings, http: ClientSession
) -> None:
    server = await start_server(settings)
    tracker = Tracker(server.ledger, NoBroadcast())
    real = await tracker.submit("ann", VIDEO)  # the team's own pipeline will run this one
    await tracker.update_progress(real, "url_validation", 1)
    await tracker.fail(real, "busy", code="busy", will_retry=True, retry_in=0)  # a due retry
    queued = await tracker.submit("ann", VIDEO)
    demo = await submit(http, server, "ann")  # from the demo page
    async with worker(settings, concurrency=2, speed=100):
        await until(lambda: all_finished(server, [demo]), 20, "the demo job to finish")
        await asyncio.sleep(0.5)  # several claim polls later
    assert (await job_of(server, real)).status == Status.RETRYING
    assert (await job_of(server, queued)).status == Status.QUEUED
    assert (await job_of(server, demo)).status == Status.COMPLETED


async def test_a_silent_job_ends_stalled_on_the_server(
    start_server: Any, db_url: str, connect: Any
) -> None:
    server = await start_server(make_settings(db_url, stall_seconds=1))
    client = await connect(server, "ann")
    tracker = Tracker(server.ledger, server.app[BROADCAST])
    job = await tracker.submit("ann", VIDEO)
    await tracker.update_progress(job, "transcript_generation", 20)
    await client.wait_for(
        lambda: any(d.get("code") == "stalled" for d in client.of("processing_error")), 10
    )
    [ended] = client.of("processing_error")
    assert ended["jobId"] == job and ended["willRetry"] is False
    assert (await job_of(server, job)).status == Status.FAILED
