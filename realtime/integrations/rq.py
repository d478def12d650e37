"""RQ: a failure with retries left becomes a processing_error whose `retryAt` is when RQ
schedules the next attempt (`Retry(interval=...)`), the last one `willRetry: false`.

RQ calls an `on_failure` callback by its import path, so the callback lives in your tasks
module, next to your tracker:

    tracker = SyncTracker.from_env()

    def on_failure(job, connection, exc_type, exc, tb):
        realtime.integrations.rq.report_failure(tracker, job, exc)

    queue.enqueue(process, kwargs={"job_id": job_id},   # RQ's own job_id= names RQ's job
                  retry=Retry(max=2, interval=[10, 30]), on_failure=Callback(on_failure))

Run the worker with `--with-scheduler` when the retries have an interval (RQ's scheduler
starts them).
"""

from __future__ import annotations

from typing import Any

from ..sync import SyncTracker
from ._common import JobIdOf, job_id_kwarg, report


def report_failure(
    tracker: SyncTracker, job: Any, exc: BaseException | None, *, job_id: JobIdOf = job_id_kwarg
) -> None:
    """Store the failure of RQ job `job` for the tracked job it works on. RQ runs failure
    callbacks before it decides on the retry, so `job` still tells what comes next."""
    tracked = job_id(job.args or (), job.kwargs or {})
    if tracked is None:
        return
    will_retry = bool(job.retries_left)
    retry_in = float(job.get_retry_interval()) if will_retry else None
    report(
        tracker,
        tracked,
        exc or RuntimeError("job failed"),
        will_retry=will_retry,
        retry_in=retry_in,
    )
