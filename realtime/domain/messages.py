"""One builder per message the service stores or sends: every producer builds through these.

The `*_update`/`processing_*` builders make what a producer asks to store (optional fields
left out when not given, so `jobs.apply` can tell "not given" from "cleared"); `apply` turns
that into the full stored form with `stored_*`. `snapshot`, `replay_complete` and
`status_all` are what a reader of the stream is sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .times import iso

Message = dict[str, Any]


def room_of(user_id: str) -> str:
    """The Socket.IO room (and fan-out address) of a user's connections."""
    return f"user:{user_id}"


# ---- what producers ask to store ----------------------------------------------------------------


def progress_update(
    job_id: str,
    stage: str,
    progress: int,
    *,
    message: str | None = None,
    estimated_completion: str | None = None,
    video_title: str | None = None,
    video_duration: float | None = None,
) -> Message:
    m: Message = {"type": "progress_update", "jobId": job_id, "stage": stage, "progress": progress}
    if message is not None:
        m["message"] = message
    if estimated_completion is not None:
        m["estimatedCompletion"] = estimated_completion
    if video_title is not None:
        m["videoTitle"] = video_title
    if video_duration is not None:
        m["videoDurationSeconds"] = video_duration
    return m


def queue_update(
    job_id: str, position: int, queue_length: int, wait: float | None, now: float
) -> Message:
    """A queued job's place; `wait` (seconds, None when unknown) also gives estimatedStart."""
    return {
        "type": "queue_update",
        "jobId": job_id,
        "position": position,
        "queueLength": queue_length,
        "estimatedWaitSeconds": wait,
        "estimatedStart": iso(now + wait) if wait is not None else None,
    }


def processing_complete(
    job_id: str,
    *,
    result: dict[str, Any] | None = None,
    video_title: str | None = None,
    duration_seconds: float | None = None,
) -> Message:
    m: Message = {"type": "processing_complete", "jobId": job_id}
    if result is not None:
        m["result"] = result
    if video_title is not None:
        m["videoTitle"] = video_title
    if duration_seconds is not None:
        m["durationSeconds"] = duration_seconds
    return m


def processing_error(
    job_id: str, error: str, *, code: str, will_retry: bool, retry_at: float | None = None
) -> Message:
    m: Message = {
        "type": "processing_error",
        "jobId": job_id,
        "error": error,
        "code": code,
        "willRetry": will_retry,
    }
    if retry_at is not None:
        m["retryAt"] = iso(retry_at)
    return m


def cancelled(job_id: str, by: str | None = None) -> Message:
    """The processing_error that ends a cancelled job; `by`: the user who cancelled it."""
    m = processing_error(job_id, "cancelled", code="cancelled", will_retry=False)
    if by is not None:
        m["cancelledBy"] = by
    return m


# ---- the stored forms (every field present) ------------------------------------------------------


def stored_progress(
    job_id: str,
    stage: str,
    progress: int,
    message: str,
    estimated_completion: float | None,
    video_title: str | None,
    video_duration: float | None = None,
) -> Message:
    m: Message = {
        "type": "progress_update",
        "jobId": job_id,
        "stage": stage,
        "progress": progress,
        "message": message,
        "estimatedCompletion": iso(estimated_completion),
        "videoTitle": video_title,
    }
    if video_duration is not None:
        m["videoDurationSeconds"] = video_duration
    return m


def stored_queue(
    job_id: str,
    position: int,
    queue_length: int,
    wait: float | None,
    start: str | None,
) -> Message:
    return {
        "type": "queue_update",
        "jobId": job_id,
        "position": position,
        "queueLength": queue_length,
        "estimatedWaitSeconds": wait,
        "estimatedStart": start,
    }


def stored_complete(
    job_id: str, video_title: str | None, duration: float, result: dict[str, Any]
) -> Message:
    return {
        "type": "processing_complete",
        "jobId": job_id,
        "videoTitle": video_title,
        "durationSeconds": duration,
        "result": result,
    }


def stored_error(
    job_id: str,
    error: str,
    code: str,
    attempt: int,
    max_attempts: int,
    will_retry: bool,
    retry_at: float | None,
) -> Message:
    return {
        "type": "processing_error",
        "jobId": job_id,
        "error": error,
        "code": code,
        "attempt": attempt,
        "maxAttempts": max_attempts,
        "willRetry": will_retry,
        "retryAt": iso(retry_at),
    }


# ---- what readers of the stream get --------------------------------------------------------------


def snapshot(jobs: Sequence[Message], last_seq: int, epoch: str, now: float) -> Message:
    return {
        "type": "snapshot",
        "jobs": list(jobs),
        "lastSeq": last_seq,
        "epoch": epoch,
        "ts": iso(now),
    }


@dataclass(frozen=True)
class Replay:
    """What a (re)connecting client gets: maybe a snapshot, then messages, then the summary
    (`replay_complete`) of the range they cover."""

    snapshot: Message | None
    messages: list[Message]
    from_seq: int
    to_seq: int
    epoch: str
    recovered: bool
    omitted: int
    at: float

    @property
    def complete(self) -> Message:
        """The replay_complete event."""
        return {
            "type": "replay_complete",
            "fromSeq": self.from_seq,
            "toSeq": self.to_seq,
            "epoch": self.epoch,
            "recovered": self.recovered,
            "omitted": self.omitted,
            "ts": iso(self.at),
        }


def status_all(
    messages: list[Message], last_seq: int, epoch: str, omitted: int, recovered: bool
) -> Message:
    """The answer of the HTTP polling fallback."""
    return {
        "messages": messages,
        "lastSeq": last_seq,
        "epoch": epoch,
        "omitted": omitted,
        "recovered": recovered,
    }
