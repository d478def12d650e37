"""What both integrations need: the job a task reports for, and the error it reports."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..domain.errors import DomainError
from ..sync import SyncTracker

log = logging.getLogger("realtime.integrations")

# The error text a processing_error may carry (domain.schemas.ProcessingErrorIn).
MAX_ERROR = 2000


def job_id_kwarg(args: Sequence[Any], kwargs: Mapping[str, Any]) -> str | None:
    """The default: the task is called with a `job_id` keyword argument."""
    value = kwargs.get("job_id")
    return value if isinstance(value, str) and value else None


JobIdOf = Callable[[Sequence[Any], Mapping[str, Any]], "str | None"]


def error_code(exc: BaseException) -> str:
    """`TranscriptTimeout` -> `transcript_timeout`: a valid `code` from the exception's class."""
    name = re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()
    return re.sub(r"[^a-z0-9_.-]", "_", name)[:64] or "task_failed"


def error_text(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[:MAX_ERROR]


def report(
    tracker: SyncTracker,
    job_id: str,
    exc: BaseException,
    *,
    will_retry: bool,
    retry_at: float | None = None,
    retry_in: float | None = None,
) -> None:
    """Store the processing_error; a refusal (the job was cancelled or is finished) is logged,
    never raised into the task queue's worker."""
    try:
        tracker.fail(
            job_id,
            error_text(exc),
            code=error_code(exc),
            will_retry=will_retry,
            retry_at=retry_at,
            retry_in=retry_in,
        )
    except DomainError as refused:
        log.warning("job %s: failure not recorded: %s", job_id, refused.message)
