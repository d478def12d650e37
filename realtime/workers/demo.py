"""The demo processing pipeline: `python -m realtime worker [--concurrency N] [--speed X]`.

A worker registers itself (slots, speed, heartbeat) in the `workers` table, claims jobs N at a
time, and walks each through the seven work stages with simulated work: each stage lasts its
nominal length (eta.NOMINAL, 60 s in all) varied by at most +-30 %, divided by `speed`.
Progress moves in steps of a few percent across the whole job, each `progress_update`
carrying the model's estimatedCompletion. The store learns each stage's length from these
transitions, as it does from any pipeline's (store/writes.py).

It claims only jobs of the demo pipeline (submitted on a `serve --demo` node): a real
pipeline's jobs on the same database are never touched.

A `videoUrl` query `fail=STAGE` fails at that stage on the first attempt only;
`fail=STAGE:always` on every attempt (the job ends `failed` after maxAttempts). A retry
resumes at the failed stage.

Each worker process also runs the stalled-job sweep and a QueueNotifier. It notices within
WATCH_SECONDS that a job it holds was cancelled (or failed by a sweep) and frees the slot;
a freed slot claims the next job at once, an idle worker polls every POLL_SECONDS.
SIGTERM / SIGINT: stop claiming, hand the running jobs back (a `worker_stopped` error that
will retry at once), delete the worker's row, exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

from ..broadcast.outbox import Outbox
from ..config import Settings
from ..domain import eta
from ..domain import messages as msg
from ..domain.job import (
    DEMO,
    MAX_ATTEMPTS,
    STAGE_MESSAGES,
    WORK_STAGES,
    Job,
    Status,
    retry_delay,
)
from ..domain.schemas import youtube_video_id
from ..domain.times import iso
from ..loops import supervise, wait_event
from ..store.claims import STALL_SECONDS, Claims, Lost
from ..store.queue import load_model
from ..tracker import Tracker
from .notifier import QueueNotifier

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 2.0
POLL_SECONDS = 0.25
WATCH_SECONDS = 0.25
NOTIFY_SECONDS = 0.5
# Progress steps of about this many percent; at most one progress_update per MIN_STEP_SECONDS.
STEP_PERCENT = 3.0
MIN_STEP_SECONDS = 0.02
VARIATION = 0.3
STOP_SECONDS = 5.0


@dataclass(frozen=True)
class Failure:
    """The `fail=` instruction of a demo job's URL."""

    stage: str
    always: bool

    def hits(self, stage: str, attempt: int) -> bool:
        return stage == self.stage and (self.always or attempt == 1)


def failure_of(video_url: str | None) -> Failure | None:
    """`fail=STAGE` or `fail=STAGE:always` from the URL's query; None if absent or unknown."""
    if not video_url:
        return None
    url = video_url if "://" in video_url else "https://" + video_url
    try:
        values = parse_qs(urlparse(url).query).get("fail")
    except ValueError:
        return None
    if not values:
        return None
    stage, _, mode = values[0].partition(":")
    if stage not in WORK_STAGES:
        return None
    return Failure(stage, mode == "always")


_TOPICS = (
    ("Key ideas", ("The main argument", "Why it matters", "What changes")),
    ("Examples", ("A case from the talk", "A counter-example", "A demo")),
    ("Open questions", ("What was left out", "What to try next")),
    ("Terms", ("Definitions", "Related work")),
    ("Takeaways", ("For beginners", "For practitioners", "One thing to remember")),
)


def mind_map(rng: random.Random, title: str) -> dict[str, Any]:
    """A made-up outline for the demo's result page: the video's title, a few branches."""
    branches = rng.sample(_TOPICS, k=rng.randint(3, len(_TOPICS)))
    return {
        "title": title,
        "children": [
            {"title": name, "children": [{"title": t, "children": []} for t in leaves]}
            for name, leaves in branches
        ],
    }


def resume_stage(job: Job) -> str:
    """Where an attempt starts: a retry at the stage that failed, else at the beginning."""
    if job.status == Status.RETRYING and job.stage in WORK_STAGES:
        return job.stage
    return WORK_STAGES[0]


@dataclass
class _Running:
    job: Job
    lost: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class DemoWorker:
    def __init__(
        self,
        claims: Claims,
        outbox: Outbox,
        *,
        concurrency: int,
        speed: float,
        worker_id: str | None = None,
        rng: random.Random | None = None,
        heartbeat_interval: float = HEARTBEAT_SECONDS,
        poll_interval: float = POLL_SECONDS,
        watch_interval: float = WATCH_SECONDS,
        stall_after: float = STALL_SECONDS,
        notify_interval: float = NOTIFY_SECONDS,
    ) -> None:
        if concurrency < 1 or not speed > 0:
            raise ValueError("concurrency must be >= 1 and speed > 0")
        self.claims = claims
        self.outbox = outbox
        self.concurrency = concurrency
        self.speed = speed
        self.worker_id = worker_id or f"worker-{uuid.uuid4().hex[:12]}"
        self.rng = rng or random.Random()
        self.heartbeat_interval = heartbeat_interval
        self.poll_interval = poll_interval
        self.watch_interval = watch_interval
        self.stall_after = stall_after
        self.notifier = QueueNotifier(claims.ledger, outbox, interval=notify_interval)
        self.model = eta.NOMINAL_MODEL
        self.running: dict[str, _Running] = {}
        self._slot_freed = asyncio.Event()

    # ---- the main loop --------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        await self.claims.heartbeat(self.worker_id, concurrency=self.concurrency, speed=self.speed)
        await self._reload_model()
        log.info("worker %s: %d slot(s) at speed %g", self.worker_id, self.concurrency, self.speed)
        background = [
            asyncio.create_task(
                self._every("housekeeping", self.heartbeat_interval, self._housekeeping)
            ),
            asyncio.create_task(self._every("watch", self.watch_interval, self._watch)),
            asyncio.create_task(self.notifier.run()),
        ]
        try:
            await self._claim_loop(stop)
        finally:
            await self._shutdown(background)

    async def _claim_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._slot_freed.clear()
            try:
                while len(self.running) < self.concurrency and not stop.is_set():
                    claimed = await self.claims.claim(
                        self.worker_id, self._start_message, pipeline=DEMO, speed=self.speed
                    )
                    if claimed is None:
                        break
                    job, stored = claimed
                    await self.outbox.send([stored])
                    self._start(job)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database hiccup: keep going
                log.warning("worker %s: claim failed: %s", self.worker_id, exc)
            # Full: sleep until a slot frees. Otherwise poll for new or newly due jobs.
            timeout = self.poll_interval if len(self.running) < self.concurrency else None
            waits = [
                asyncio.ensure_future(stop.wait()),
                asyncio.ensure_future(self._slot_freed.wait()),
            ]
            try:
                await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()

    def _start(self, job: Job) -> None:
        run = _Running(job)
        self.running[job.job_id] = run
        run.task = asyncio.create_task(self._work(run), name=f"job-{job.job_id}")
        run.task.add_done_callback(lambda _t: self._finished(job.job_id))
        self.notifier.wake.set()
        log.info("worker %s: job %s attempt %d", self.worker_id, job.job_id, job.attempt)

    def _finished(self, job_id: str) -> None:
        self.running.pop(job_id, None)
        self._slot_freed.set()
        self.notifier.wake.set()

    async def _shutdown(self, background: list[asyncio.Task[Any]]) -> None:
        runs = list(self.running.values())
        for run in runs:
            run.lost.set()
        tasks = [r.task for r in runs if r.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=STOP_SECONDS)
        for t in background:
            t.cancel()
        await asyncio.wait(background, timeout=STOP_SECONDS)
        for run in runs:
            with contextlib.suppress(Lost, Exception):
                await asyncio.wait_for(self._hand_back(run.job), STOP_SECONDS)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.claims.unregister(self.worker_id), STOP_SECONDS)
        log.info("worker %s: stopped", self.worker_id)

    async def _publish(self, job: Job, message: dict[str, Any]) -> None:
        await self.outbox.put(self.claims.publish(self.worker_id, job, message))

    async def _hand_back(self, job: Job) -> None:
        message = msg.processing_error(
            job.job_id,
            "The worker stopped; the job will be retried",
            code="worker_stopped",
            will_retry=True,
            retry_at=self.claims.clock(),
        )
        await self._publish(job, message)

    # ---- background duties ----------------------------------------------------------------

    async def _every(self, what: str, interval: float, fn: Callable[[], Awaitable[None]]) -> None:
        await supervise(f"worker {self.worker_id}: {what}", fn, every=interval, logger=log)

    async def _housekeeping(self) -> None:
        await self.claims.heartbeat(self.worker_id, concurrency=self.concurrency, speed=self.speed)
        swept = await self.claims.sweep(stall_after=self.stall_after, speed=self.speed)
        if swept:
            await self.outbox.send(swept)
            self.notifier.wake.set()
        await self._reload_model()

    async def _watch(self) -> None:
        """Let go, within a watch interval, of jobs cancelled or taken away meanwhile."""
        runs = list(self.running.values())
        if not runs:
            return
        held = await self.claims.still_held(self.worker_id, [r.job for r in runs])
        for r in runs:
            if r.job.job_id not in held:
                r.lost.set()

    async def _reload_model(self) -> None:
        self.model = await self.claims.ledger.hops.read(load_model)

    # ---- one job --------------------------------------------------------------------------

    def _estimate(self, stage: str, stage_elapsed: float) -> str | None:
        remaining = eta.remaining_seconds(self.model, stage, stage_elapsed, self.speed)
        return iso(self.claims.clock() + remaining)

    def _start_message(self, job: Job, now: float) -> dict[str, Any]:
        stage = resume_stage(job)
        return msg.progress_update(
            job.job_id,
            stage,
            eta.progress_at(stage, 0.0),
            message=STAGE_MESSAGES[stage],
            estimated_completion=iso(
                now + eta.remaining_seconds(self.model, stage, 0.0, self.speed)
            ),
        )

    async def _work(self, run: _Running) -> None:
        job = run.job
        try:
            await self._walk(run)
        except Lost:
            log.info(
                "worker %s: job %s let go (cancelled or taken over)", self.worker_id, job.job_id
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("worker %s: job %s failed unexpectedly", self.worker_id, job.job_id)

    async def _walk(self, run: _Running) -> None:
        job = run.job
        failure = failure_of(job.video_url)
        video_id = youtube_video_id(job.video_url or "")
        title = job.title or (f"YouTube video {video_id}" if video_id else None)
        # The claim put the job at the attempt's first stage (a retry: the stage that failed).
        first = WORK_STAGES.index(job.stage) if job.stage in WORK_STAGES else 0
        for i in range(first, len(WORK_STAGES)):
            stage = WORK_STAGES[i]
            started = time.monotonic()
            if i != first:  # the claim already announced the attempt's first stage
                await self._progress(run, stage, eta.progress_at(stage, 0.0), 0.0, title)
            length = (
                eta.NOMINAL[stage] * self.rng.uniform(1 - VARIATION, 1 + VARIATION) / self.speed
            )
            weight = 100 * eta.NOMINAL[stage] / eta.NOMINAL_TOTAL
            steps = max(1, round(weight / STEP_PERCENT))
            # A failing stage fails halfway through.
            fail_at = max(steps // 2, 1) if failure and failure.hits(stage, job.attempt) else None
            last_sent = eta.progress_at(stage, 0.0)
            last_time = time.monotonic()
            for k in range(1, steps + 1):
                if await self._sleep_until(run, started + length * k / steps):
                    return
                if fail_at is not None and k >= fail_at:
                    await self._fail(run, stage)
                    return
                if k == steps:
                    break
                progress = eta.progress_at(stage, k / steps)
                now = time.monotonic()
                if progress > last_sent and now - last_time >= MIN_STEP_SECONDS:
                    await self._progress(run, stage, progress, now - started, title)
                    last_sent, last_time = progress, now
        outline = mind_map(self.rng, title or "The video")
        result = {
            "mindmapId": f"mm_{uuid.uuid4().hex[:16]}",
            "videoId": video_id,
            "nodes": 1 + sum(1 + len(branch["children"]) for branch in outline["children"]),
            # The demo page's result view: the outline below, read from GET /api/jobs/{id}.
            "url": f"/mindmap/{job.job_id}",
            "outline": outline,
        }
        await self._publish(
            job, msg.processing_complete(job.job_id, result=result, video_title=title)
        )

    async def _sleep_until(self, run: _Running, deadline: float) -> bool:
        """Sleep until `deadline` (monotonic); True when the job was let go meanwhile."""
        delay = deadline - time.monotonic()
        if delay > 0:
            return await wait_event(run.lost, delay)
        return run.lost.is_set()

    async def _progress(
        self, run: _Running, stage: str, progress: int, stage_elapsed: float, title: str | None
    ) -> None:
        named = WORK_STAGES.index(stage) >= WORK_STAGES.index("metadata_extraction")
        message = msg.progress_update(
            run.job.job_id,
            stage,
            progress,
            message=STAGE_MESSAGES[stage],
            estimated_completion=self._estimate(stage, stage_elapsed),
            video_title=title if title and named else None,
        )
        await self._publish(run.job, message)

    async def _fail(self, run: _Running, stage: str) -> None:
        job = run.job
        will_retry = job.attempt < MAX_ATTEMPTS
        retry_at = (
            self.claims.clock() + retry_delay(job.attempt, self.speed) if will_retry else None
        )
        message = msg.processing_error(
            job.job_id,
            f"{STAGE_MESSAGES[stage]} failed (simulated failure)",
            code="stage_failed",
            will_retry=will_retry,
            retry_at=retry_at,
        )
        await self._publish(job, message)


async def run_worker(
    settings: Settings,
    *,
    concurrency: int,
    speed: float,
    stop: asyncio.Event | None = None,
    **options: Any,
) -> None:
    """Run a demo worker until `stop` is set (or, without `stop`, until SIGTERM / SIGINT).
    `options` go to DemoWorker (intervals, stall_after, worker_id, rng)."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    if stop is None:
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, stop.set)
                installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
    try:
        # Tracker's context runs the migrations first (store.migrate).
        async with Tracker.from_settings(settings) as tracker:
            claims = Claims(tracker.ledger)
            worker = DemoWorker(
                claims, tracker.outbox, concurrency=concurrency, speed=speed, **options
            )
            await worker.run(stop)
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
