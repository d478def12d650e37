"""A job as a row of the `jobs` table and back."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from .. import codec
from ..domain.job import Job, Status


def job_from_row(row: Row[Any]) -> Job:
    m = row._mapping
    return Job(
        job_id=m["job_id"],
        user_id=m["user_id"],
        status=Status(m["status"]),
        video_url=m["video_url"],
        title=m["title"],
        stage=m["stage"],
        progress=m["progress"],
        attempt=m["attempt"],
        max_attempts=m["max_attempts"],
        error=m["error"],
        error_code=m["error_code"],
        submitted_at=m["submitted_at"],
        started_at=m["started_at"],
        stage_started_at=m["stage_started_at"],
        finished_at=m["finished_at"],
        retry_at=m["retry_at"],
        estimated_completion=m["estimated_completion"],
        worker_id=m["worker_id"],
        heartbeat_at=m["heartbeat_at"],
        result=codec.loads(m["result"]) if m["result"] else None,
        last_message=codec.loads(m["last_message"]) if m["last_message"] else None,
        updated_seq=m["updated_seq"],
        updated_at=m["updated_at"],
        video_duration=m["video_duration"],
        speed=m["speed"] if m["speed"] is not None else 1.0,
        stage_progress=m["stage_progress"],
        pipeline=m["pipeline"],
        hidden=bool(m["hidden"]),
    )


def job_values(job: Job) -> dict[str, Any]:
    return {
        "job_id": job.job_id,
        "user_id": job.user_id,
        "status": job.status.value,
        "video_url": job.video_url,
        "title": job.title,
        "stage": job.stage,
        "progress": job.progress,
        "attempt": job.attempt,
        "max_attempts": job.max_attempts,
        "error": job.error,
        "error_code": job.error_code,
        "submitted_at": job.submitted_at,
        "started_at": job.started_at,
        "stage_started_at": job.stage_started_at,
        "finished_at": job.finished_at,
        "retry_at": job.retry_at,
        "estimated_completion": job.estimated_completion,
        "worker_id": job.worker_id,
        "heartbeat_at": job.heartbeat_at,
        "result": codec.dumps(job.result) if job.result is not None else None,
        "last_message": codec.dumps(job.last_message) if job.last_message is not None else None,
        "updated_seq": job.updated_seq,
        "updated_at": job.updated_at,
        "video_duration": job.video_duration,
        "speed": job.speed,
        "stage_progress": job.stage_progress,
        "pipeline": job.pipeline,
        "hidden": job.hidden,
    }
