"""Celery: each retry's countdown becomes the job's `retryAt`, the final failure a
processing_error with `willRetry: false`.

    tracker = SyncTracker.from_env()
    realtime.integrations.celery.connect(tracker)   # in the module your worker imports

    @app.task(bind=True, max_retries=2)             # 3 attempts: the service's maxAttempts
    def process(self, job_id: str) -> None:
        try:
            ...
        except TranscriptTimeout as exc:
            raise self.retry(exc=exc, countdown=30)

`autoretry_for`/`retry_backoff` work the same way (Celery calls `retry` with its countdown).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from celery import signals

from ..sync import SyncTracker
from ._common import JobIdOf, job_id_kwarg, report


def _retry_at(when: Any) -> float | None:
    """Celery's Retry.when: seconds from now, or the datetime of the next attempt."""
    if isinstance(when, int | float):
        return time.time() + float(when)
    if isinstance(when, datetime):
        aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
        return aware.timestamp()
    return None


def connect(tracker: SyncTracker, *, job_id: JobIdOf = job_id_kwarg) -> Callable[[], None]:
    """Report every tracked task's retries and final failure; returns a function that
    disconnects. `job_id(args, kwargs)` finds the job a task works on (default: `job_id=`)."""

    def on_retry(request: Any = None, reason: Any = None, **_: Any) -> None:
        job = job_id(request.args or (), request.kwargs or {}) if request is not None else None
        if job is None:
            return
        exc = getattr(reason, "exc", None) or reason
        retry_at = _retry_at(getattr(reason, "when", None))
        report(tracker, job, exc, will_retry=True, retry_at=retry_at)

    def on_failure(
        exception: BaseException | None = None,
        args: Any = None,
        kwargs: Any = None,
        **_: Any,
    ) -> None:
        job = job_id(args or (), kwargs or {})
        if job is None or exception is None:
            return
        report(tracker, job, exception, will_retry=False)

    signals.task_retry.connect(on_retry, weak=False)
    signals.task_failure.connect(on_failure, weak=False)

    def disconnect() -> None:
        signals.task_retry.disconnect(on_retry)
        signals.task_failure.disconnect(on_failure)

    return disconnect
