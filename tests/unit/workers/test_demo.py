"""The demo worker's pure helpers: the `fail=` instruction and where an attempt starts."""

from __future__ import annotations

import pytest

from realtime.domain.job import Job, Status
from realtime.workers.demo import Failure, failure_of, resume_stage


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://youtu.be/dQw4w9WgXcQ", None),
        ("https://youtu.be/dQw4w9WgXcQ?fail=indexing", Failure("indexing", False)),
        (
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ&fail=content_analysis:always",
            Failure("content_analysis", True),
        ),
        ("youtube.com/watch?v=dQw4w9WgXcQ&fail=url_validation", Failure("url_validation", False)),
        ("https://youtu.be/dQw4w9WgXcQ?fail=nonsense", None),
        ("https://youtu.be/dQw4w9WgXcQ?fail=completed", None),
        (None, None),
    ],
)
def test_failure_instruction_from_the_url(url: str | None, expected: Failure | None) -> None:
    assert failure_of(url) == expected


def test_fail_once_hits_only_the_first_attempt() -> None:
    once, always = Failure("indexing", False), Failure("indexing", True)
    assert once.hits("indexing", 1) and not once.hits("indexing", 2)
    assert always.hits("indexing", 3) and not always.hits("data_storage", 1)


def test_a_retry_resumes_at_the_failed_stage() -> None:
    fresh = Job(job_id="j", user_id="u")
    assert resume_stage(fresh) == "url_validation"
    retrying = Job(job_id="j", user_id="u", status=Status.RETRYING, stage="mindmap_generation")
    assert resume_stage(retrying) == "mindmap_generation"
