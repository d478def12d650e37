"""Job states and the legal moves between them: pure, no I/O, clock passed in."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from . import eta
from .errors import Conflict, Invalid
from .messages import stored_complete, stored_error, stored_progress, stored_queue
from .stages import STAGE_INDEX, STAGE_MESSAGES, STAGES, WORK_STAGES
from .times import iso, parse_iso

__all__ = ["STAGES", "STAGE_INDEX", "STAGE_MESSAGES", "WORK_STAGES"]

MAX_ATTEMPTS = 3
# The pipeline of jobs submitted on a demo node: only the demo worker claims them.
DEMO = "demo"
RETRY_BASE_SECONDS = 10.0

MESSAGE_TYPES = ("progress_update", "queue_update", "processing_complete", "processing_error")


class Status(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    RETRYING = "retrying"
    COMPLETED = "completed"
    FAILED = "failed"


ACTIVE = (Status.QUEUED, Status.PROCESSING, Status.RETRYING)
FINISHED = (Status.COMPLETED, Status.FAILED)


def retry_delay(attempt: int, speed: float = 1.0) -> float:
    """Backoff before attempt `attempt + 1`: 10 * 2^(attempt-1) seconds, divided by speed."""
    return float(RETRY_BASE_SECONDS * 2.0 ** (max(attempt, 1) - 1) / speed)


@dataclass
class Job:
    job_id: str
    user_id: str
    status: Status = Status.QUEUED
    video_url: str | None = None
    title: str | None = None
    stage: str | None = None
    progress: int = 0
    attempt: int = 0
    max_attempts: int = MAX_ATTEMPTS
    error: str | None = None
    error_code: str | None = None
    submitted_at: float = 0.0
    started_at: float | None = None
    stage_started_at: float | None = None
    finished_at: float | None = None
    retry_at: float | None = None
    estimated_completion: float | None = None
    worker_id: str | None = None
    heartbeat_at: float | None = None
    result: dict[str, Any] | None = None
    last_message: dict[str, Any] | None = None
    updated_seq: int = 0
    # When the job last got a message (the stall sweep's clock).
    updated_at: float | None = None
    # The video's length in seconds, when a publisher reported it.
    video_duration: float | None = None
    # The claiming worker's speed (the demo's --speed; 1 for real pipelines).
    speed: float = 1.0
    # The job's progress when its current stage began.
    stage_progress: int | None = None
    # Who may claim it: "demo" for the demo worker; None for the team's own pipeline.
    pipeline: str | None = None
    # Cleared from the user's list ("Clear finished"): left out of snapshots.
    hidden: bool = False

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def state(self, position: int | None) -> dict[str, Any]:
        """The job as an entry of `snapshot.jobs`."""
        return {
            "jobId": self.job_id,
            "status": self.status.value,
            "stage": self.stage,
            "progress": self.progress,
            "videoTitle": self.title,
            "estimatedCompletion": iso(self.estimated_completion),
            "position": position if self.status == Status.QUEUED else None,
            "error": self.error,
            **({"result": self.result or {}} if self.status == Status.COMPLETED else {}),
            "videoUrl": self.video_url,
            "submittedAt": iso(self.submitted_at),
            "finishedAt": iso(self.finished_at),
            **({"cancelledBy": self.cancelled_by} if self.error_code == "cancelled" else {}),
        }

    @property
    def cancelled_by(self) -> str | None:
        """Who cancelled the job (a user id; None: a backend), from its last message."""
        m = self.last_message or {}
        return m.get("cancelledBy") if m.get("code") == "cancelled" else None


def apply(
    job: Job, message: dict[str, Any], now: float, model: eta.Model | None = None
) -> tuple[Job, dict[str, Any]]:
    """Validate `message` (already shape-checked) against `job`; return the new job and the
    full payload to store (everything but `seq` and `ts`). Raises DomainError.

    With `model`, a progress_update whose publisher gave no estimatedCompletion gets one from
    the model (a publisher's own value wins)."""
    if job.finished:
        raise Conflict(f"job {job.job_id} is already {job.status.value}")
    kind = message["type"]
    # A shallow copy: the same as dataclasses.replace, at a fifth of its cost (hot path).
    new = copy.copy(job)
    if kind == "progress_update":
        payload = _progress(new, message, now, model)
    elif kind == "queue_update":
        payload = _queue(new, message)
    elif kind == "processing_complete":
        payload = _complete(new, message, now)
    elif kind == "processing_error":
        payload = _error(new, message, now)
    else:
        raise Invalid(f"unknown message type {kind!r}", {"type": [f"unknown type {kind!r}"]})
    new.last_message = payload
    new.updated_at = now
    return new, payload


def _progress(job: Job, m: dict[str, Any], now: float, model: eta.Model | None) -> dict[str, Any]:
    stage, progress = m["stage"], m["progress"]
    if job.status in (Status.QUEUED, Status.RETRYING):
        # The first progress of an attempt starts it; a retry may restart below the old progress.
        job.attempt += 1
        job.status = Status.PROCESSING
        job.started_at = job.started_at if job.started_at is not None else now
        job.retry_at = None
        job.error = None
        job.error_code = None
        job.stage_started_at = now
        job.stage_progress = progress
    else:
        if job.stage is not None and STAGE_INDEX[stage] < STAGE_INDEX[job.stage]:
            raise Invalid(
                f"stage {stage} comes before the job's current stage {job.stage}",
                {"stage": [f"cannot go back from {job.stage} to {stage}"]},
            )
        if progress < job.progress:
            raise Invalid(
                f"progress {progress} is lower than the job's current {job.progress} "
                f"in attempt {job.attempt}",
                {"progress": [f"must be at least {job.progress}"]},
            )
        if stage != job.stage:
            job.stage_started_at = now
            job.stage_progress = progress
    if m.get("videoTitle"):
        job.title = m["videoTitle"]
    if m.get("videoDurationSeconds") is not None:
        job.video_duration = float(m["videoDurationSeconds"])
    job.stage = stage
    job.progress = progress
    given = m.get("estimatedCompletion")
    if given is not None:
        job.estimated_completion = parse_iso(given)
    elif model is not None:
        job.estimated_completion = now + estimate_remaining(job, model, now)
    elif "estimatedCompletion" in m:
        job.estimated_completion = None
    return stored_progress(
        job.job_id,
        stage,
        progress,
        m.get("message") or STAGE_MESSAGES[stage],
        job.estimated_completion,
        job.title,
        job.video_duration,
    )


def estimate_remaining(job: Job, model: eta.Model, now: float) -> float:
    """Seconds until a running job completes, from the model: what is left of its stage (by
    the time spent in it or by its progress within it, whichever says further along) and
    the later stages, scaled by the video's length where it is known."""
    if job.stage is None or job.stage not in WORK_STAGES:
        return 0.0
    elapsed = now - job.stage_started_at if job.stage_started_at is not None else 0.0
    start = job.stage_progress if job.stage_progress is not None else job.progress
    return eta.remaining_seconds(
        model,
        job.stage,
        elapsed,
        job.speed,
        video_seconds=job.video_duration,
        stage_fraction=eta.fraction_by_progress(job.stage, start, job.progress),
    )


def stage_sample(before: Job, after: Job, now: float) -> tuple[str, float, float | None] | None:
    """The finished stage a message ended, as (stage, seconds at speed 1, video length): a
    progress_update that moves a running job to a later stage, or the job's completion."""
    if before.status != Status.PROCESSING or before.stage not in WORK_STAGES:
        return None
    if before.stage_started_at is None or after.attempt != before.attempt:
        return None
    if after.status != Status.COMPLETED and (
        after.status != Status.PROCESSING or after.stage == before.stage
    ):
        return None
    seconds = (now - before.stage_started_at) * before.speed
    return before.stage, max(seconds, 0.0), after.video_duration


def _queue(job: Job, m: dict[str, Any]) -> dict[str, Any]:
    if job.status != Status.QUEUED:
        raise Conflict(f"job {job.job_id} is {job.status.value}, not queued")
    return stored_queue(
        job.job_id,
        m["position"],
        m["queueLength"],
        m.get("estimatedWaitSeconds"),
        m.get("estimatedStart"),
    )


def _complete(job: Job, m: dict[str, Any], now: float) -> dict[str, Any]:
    if m.get("videoTitle"):
        job.title = m["videoTitle"]
    job.status = Status.COMPLETED
    job.stage = "completed"
    job.progress = 100
    job.finished_at = now
    job.estimated_completion = None
    job.retry_at = None
    job.result = m.get("result") or {}
    duration = m.get("durationSeconds")
    if duration is None:
        duration = round(now - job.started_at, 3) if job.started_at is not None else 0.0
    return stored_complete(job.job_id, job.title, duration, job.result)


def _error(job: Job, m: dict[str, Any], now: float) -> dict[str, Any]:
    if job.status == Status.QUEUED or job.attempt == 0:
        job.attempt += 1  # failing before any progress still used up an attempt
        job.started_at = job.started_at if job.started_at is not None else now
    code = m["code"]
    will_retry = bool(m["willRetry"]) and code != "cancelled" and job.attempt < job.max_attempts
    job.error = m["error"]
    job.error_code = code
    job.estimated_completion = None
    if will_retry:
        job.status = Status.RETRYING
        retry_at = parse_iso(m.get("retryAt"))
        job.retry_at = retry_at if retry_at is not None else now + retry_delay(job.attempt)
    else:
        job.status = Status.FAILED
        job.retry_at = None
        job.finished_at = now
    payload = stored_error(
        job.job_id, m["error"], code, job.attempt, job.max_attempts, will_retry, job.retry_at
    )
    if code == "cancelled":
        payload["cancelledBy"] = m.get("cancelledBy")
    return payload
