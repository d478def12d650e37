"""Real pipelines, as another team runs them: a plain publisher process with SyncTracker, a real
Celery worker and a real RQ worker (brokers on a private redis-server), no demo worker.

What they must get: estimates learned from their own jobs, true retry times (the retryAt a
client sees is within 1 s of when the framework runs the next attempt), a final failure that
says it will not retry, and a SyncTracker that works across threads and forks.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from realtime.domain.times import parse_iso
from realtime.store.engine import create_engine
from realtime.store.ledger import Ledger
from realtime.store.migrate import migrate
from tests.support import stop_process, until

VIDEO = "https://youtu.be/dQw4w9WgXcQ"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def store(tmp_path: Path) -> Any:
    url = f"sqlite+aiosqlite:///{tmp_path}/pipeline.db"
    engine = create_engine(url)
    await migrate(engine)
    ledger = Ledger(engine, history_size=10_000, history_ttl=86400)
    yield url, ledger
    await ledger.close()


def env_for(url: str, redis_url: str | None = None) -> dict[str, str]:
    env = {**os.environ, "REALTIME_DATABASE_URL": url, "PYTHONPATH": str(REPO)}
    env.pop("REALTIME_REDIS_URL", None)
    if redis_url:
        env["REALTIME_REDIS_URL"] = redis_url
    return env


async def messages(ledger: Ledger, user: str) -> list[dict[str, Any]]:
    return (await ledger.read_after(user, 0, 10**9)).messages


# ---- a plain publisher process: estimates learned from its own jobs ------------------------------

PUBLISHER = """
import random, sys, time
from realtime import SyncTracker
from realtime.domain.stages import WORK_STAGES

# Stage lengths of this pipeline (seconds), nothing like the service's nominal 60 s, and long
# enough that a busy machine's scheduling hiccups (tens of ms) are not the error measured.
BASE = dict(zip(WORK_STAGES, (0.08, 0.2, 0.9, 0.6, 0.55, 0.2, 0.3)))
BANDS = (0, 3, 11, 41, 61, 80, 88)
rng = random.Random(int(sys.argv[1]))
with SyncTracker.from_env() as t:
    for n in range(int(sys.argv[2])):
        job = t.submit("pat", "https://youtu.be/dQw4w9WgXcQ")
        for stage, start in zip(WORK_STAGES, BANDS):
            t.update_progress(job, stage, start, video_title="Talk" if start else None)
            time.sleep(BASE[stage] * rng.uniform(0.7, 1.3))
        t.complete(job, {"n": n})
"""


async def test_a_publishing_pipeline_gets_estimates_learned_from_its_own_jobs(store: Any) -> None:
    url, ledger = store
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", PUBLISHER, "7", "6", env=env_for(url), stderr=subprocess.PIPE
    )
    _, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode == 0, err.decode()
    got = await messages(ledger, "pat")
    progress = [m for m in got if m["type"] == "progress_update"]
    assert all(m["estimatedCompletion"] is not None for m in progress), "never absent"
    assert {m["videoTitle"] for m in progress if m["progress"] > 0} == {"Talk"}
    # The sixth job, after five finished ones: each stage start's estimate against the truth.
    jobs = list(dict.fromkeys(m["jobId"] for m in got))
    last = [m for m in got if m["jobId"] == jobs[-1]]
    done = parse_iso(next(m["ts"] for m in last if m["type"] == "processing_complete"))
    assert done is not None
    errors = []
    for m in (m for m in last if m["type"] == "progress_update"):
        at, estimate = parse_iso(m["ts"]), parse_iso(m["estimatedCompletion"])
        assert at is not None and estimate is not None
        errors.append(abs(estimate - done) / (done - at))
    assert len(errors) == 7
    assert statistics.median(errors) <= 0.25, errors


# ---- SyncTracker across threads and forks --------------------------------------------------------

THREADS_AND_FORKS = """
import os, sys, threading
from realtime import SyncTracker

t = SyncTracker.from_env()
t.update_progress("parent", "indexing", 1, user_id="tf")       # the parent's loop exists now
def publish(name, n):
    for i in range(n):
        t.update_progress(name, "indexing", min(i + 1, 100), user_id="tf")
threads = [threading.Thread(target=publish, args=(f"thread{k}", 20)) for k in range(6)]
for th in threads: th.start()
for th in threads: th.join()
children = []
for k in range(3):
    pid = os.fork()
    if pid == 0:                       # a work horse: the parent's loop thread is not here
        publish(f"child{k}", 20)
        t.close()
        os._exit(0)
    children.append(pid)
codes = [os.waitpid(pid, 0)[1] for pid in children]
publish("parent-after", 5)
t.close()
sys.exit(1 if any(codes) else 0)
"""


async def test_sync_tracker_is_shared_by_threads_and_survives_forks(store: Any) -> None:
    url, ledger = store
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", THREADS_AND_FORKS, env=env_for(url), stderr=subprocess.PIPE
    )
    _, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode == 0, err.decode()
    got = await messages(ledger, "tf")
    assert [m["seq"] for m in got] == list(range(1, 1 + 1 + 6 * 20 + 3 * 20 + 5))
    for name in [f"thread{k}" for k in range(6)] + [f"child{k}" for k in range(3)]:
        mine = [m["progress"] for m in got if m["jobId"] == name]
        assert mine == list(range(1, 21)), name


# ---- Celery ------------------------------------------------------------------------------------

CELERY_TASKS = """
import time
from celery import Celery
import realtime.integrations.celery
from realtime import SyncTracker

app = Celery("tasks", broker="{broker}")
app.conf.broker_connection_retry_on_startup = True
tracker = SyncTracker.from_env()
realtime.integrations.celery.connect(tracker)


class TranscriptTimeout(Exception):
    pass


@app.task(bind=True, max_retries=1, name="tasks.process")
def process(self, job_id):
    tracker.update_progress(job_id, "transcript_generation", 20 + self.request.retries)
    if self.request.retries == 0:
        raise self.retry(exc=TranscriptTimeout("the transcriber timed out"), countdown=3)
    raise TranscriptTimeout("the transcriber timed out again")
"""


def start_worker(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=open(cwd / "worker.log", "wb")
    )


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    stop_process(proc, timeout=10)


def check_retry_timing(got: list[dict[str, Any]], late: float = 1.0) -> None:
    """retryAt is when the next attempt ran (within 1 s, or `late` s after it for a framework
    that starts due retries on a tick); the last failure will not retry."""
    errors = [m for m in got if m["type"] == "processing_error"]
    starts = [m for m in got if m["type"] == "progress_update"]
    assert len(errors) == 2 and len(starts) == 2, got
    first, last = errors
    assert first["willRetry"] is True and first["code"] == "transcript_timeout"
    assert first["error"] == "the transcriber timed out"
    retry_at, second_start = parse_iso(first["retryAt"]), parse_iso(starts[1]["ts"])
    assert retry_at is not None and second_start is not None
    assert -1.0 <= second_start - retry_at <= late, (first["retryAt"], starts[1]["ts"])
    assert last["willRetry"] is False and last["retryAt"] is None and last["attempt"] == 2


@pytest.mark.timeout(120)
async def test_celery_retries_report_their_true_time(
    store: Any, redis_server: Any, tmp_path: Path
) -> None:
    url, ledger = store
    (tmp_path / "tasks.py").write_text(CELERY_TASKS.format(broker=redis_server.url))
    env = env_for(url)
    worker = start_worker(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "tasks",
            "worker",
            "--pool=prefork",
            "--concurrency=1",
            "--loglevel=WARNING",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        tmp_path,
        env,
    )
    try:
        job, _ = await ledger.submit("cel", VIDEO)
        from celery import Celery

        client = Celery(broker=redis_server.url)
        client.send_task("tasks.process", kwargs={"job_id": job.job_id})

        async def failed() -> bool:
            found = await ledger.job(job.job_id)
            return found is not None and found[0].status.value == "failed"

        await until(failed, 60, "the task to fail for good")
    finally:
        stop_worker(worker)
    check_retry_timing(await messages(ledger, "cel"))


# ---- RQ ----------------------------------------------------------------------------------------

RQ_TASKS = """
from rq import get_current_job
import realtime.integrations.rq
from realtime import SyncTracker

tracker = SyncTracker.from_env()


class TranscriptTimeout(Exception):
    pass


def on_failure(job, connection, exc_type, exc, tb):
    realtime.integrations.rq.report_failure(tracker, job, exc)


def process(job_id):
    retried = get_current_job().retries_left == 0
    tracker.update_progress(job_id, "transcript_generation", 30 + retried)
    raise TranscriptTimeout("the transcriber timed out" + (" again" if retried else ""))
"""


@pytest.mark.timeout(120)
async def test_rq_retries_report_their_true_time(
    store: Any, redis_server: Any, tmp_path: Path
) -> None:
    url, ledger = store
    (tmp_path / "tasks.py").write_text(RQ_TASKS)
    env = {**env_for(url), "PYTHONPATH": f"{tmp_path}:{REPO}"}
    worker = start_worker(
        [
            str(Path(sys.executable).parent / "rq"),
            "worker",
            "--url",
            redis_server.url,
            "--with-scheduler",
            "--quiet",
        ],
        tmp_path,
        env,
    )
    try:
        job, _ = await ledger.submit("rqu", VIDEO)
        from redis import Redis
        from rq import Callback, Queue, Retry

        queue = Queue(connection=Redis.from_url(redis_server.url))
        queue.enqueue(
            "tasks.process",
            kwargs={"job_id": job.job_id},  # RQ's own `job_id=` names the RQ job
            retry=Retry(max=1, interval=3),
            on_failure=Callback("tasks.on_failure"),
        )

        async def failed() -> bool:
            found = await ledger.job(job.job_id)
            return found is not None and found[0].status.value == "failed"

        await until(failed, 60, "the job to fail for good")
    finally:
        stop_worker(worker)
    # RQ's scheduler looks for due jobs once a second (rq.scheduler, interval=1), then forks a
    # work horse: a retry starts up to ~1 s after the time RQ scheduled, which is the retryAt.
    check_retry_timing(await messages(ledger, "rqu"), late=1.5)
