"""The job state machine (jobs.apply): legal moves, attempts, retries, the end states."""

from __future__ import annotations

from typing import Any

import pytest

from realtime.domain.errors import Conflict, Invalid
from realtime.domain.job import (
    MAX_ATTEMPTS,
    STAGE_MESSAGES,
    STAGES,
    Job,
    Status,
    apply,
    retry_delay,
)
from realtime.domain.times import iso, parse_iso

T0 = 1_800_000_000.0


def queued() -> Job:
    return Job(job_id="j1", user_id="u1", video_url="https://youtu.be/dQw4w9WgXcQ", submitted_at=T0)


def progress(stage: str, value: int, **kw: Any) -> dict[str, Any]:
    return {"type": "progress_update", "jobId": "j1", "stage": stage, "progress": value, **kw}


def error(code: str = "stage_failed", will_retry: bool = True, **kw: Any) -> dict[str, Any]:
    return {
        "type": "processing_error",
        "jobId": "j1",
        "error": "boom",
        "code": code,
        "willRetry": will_retry,
        **kw,
    }


def test_every_stage_has_human_words() -> None:
    assert set(STAGE_MESSAGES) == set(STAGES)
    assert all(m and m[0].isupper() and "_" not in m for m in STAGE_MESSAGES.values())


def test_first_progress_starts_attempt_one() -> None:
    job, payload = apply(queued(), progress("url_validation", 0), T0 + 5)
    assert job.status == Status.PROCESSING and job.attempt == 1
    assert job.started_at == T0 + 5 and job.stage_started_at == T0 + 5
    assert payload["message"] == STAGE_MESSAGES["url_validation"]
    assert payload["estimatedCompletion"] is None
    assert job.last_message == payload


def test_apply_does_not_mutate_its_input() -> None:
    before = queued()
    apply(before, progress("url_validation", 0), T0)
    assert before.status == Status.QUEUED and before.attempt == 0


def test_progress_and_stage_never_go_back_within_an_attempt() -> None:
    job, _ = apply(queued(), progress("content_analysis", 40), T0)
    with pytest.raises(Invalid):
        apply(job, progress("content_analysis", 39), T0 + 1)
    with pytest.raises(Invalid):
        apply(job, progress("url_validation", 50), T0 + 1)
    job, _ = apply(job, progress("content_analysis", 40), T0 + 1)  # equal is fine
    assert job.stage_started_at == T0
    job, _ = apply(job, progress("mindmap_generation", 61), T0 + 2)
    assert job.stage_started_at == T0 + 2


def test_estimated_completion_and_title_are_kept() -> None:
    ec = iso(T0 + 60)
    job, payload = apply(
        queued(), progress("url_validation", 0, estimatedCompletion=ec, videoTitle="Talk"), T0
    )
    assert job.estimated_completion == parse_iso(ec) and payload["estimatedCompletion"] == ec
    assert job.title == "Talk" and payload["videoTitle"] == "Talk"


def test_error_with_retry_backs_off_exponentially() -> None:
    assert [retry_delay(a) for a in (1, 2, 3)] == [10.0, 20.0, 40.0]
    assert retry_delay(2, speed=4) == 5.0
    job, _ = apply(queued(), progress("transcript_generation", 20), T0)
    job, payload = apply(job, error(), T0 + 1)
    assert job.status == Status.RETRYING and payload["willRetry"] is True
    assert payload["attempt"] == 1 and payload["maxAttempts"] == MAX_ATTEMPTS
    assert job.retry_at == T0 + 1 + 10.0 and payload["retryAt"] == iso(T0 + 11)
    assert job.stage == "transcript_generation"  # the retry resumes here
    assert job.estimated_completion is None


def test_retry_at_given_by_the_worker_wins() -> None:
    job, _ = apply(queued(), progress("url_validation", 0), T0)
    job, payload = apply(job, error(retryAt=iso(T0 + 0.5)), T0)
    assert job.retry_at == T0 + 0.5 and payload["retryAt"] == iso(T0 + 0.5)


def test_a_retry_is_a_new_attempt_that_may_restart_lower() -> None:
    job, _ = apply(queued(), progress("content_analysis", 55), T0)
    job, _ = apply(job, error(), T0 + 1)
    job, payload = apply(job, progress("content_analysis", 41), T0 + 12)
    assert job.status == Status.PROCESSING and job.attempt == 2
    assert job.retry_at is None and job.error is None
    assert job.started_at == T0  # durationSeconds counts from the first attempt
    assert payload["progress"] == 41


def test_the_last_attempt_fails_for_good() -> None:
    job = queued()
    for attempt in range(1, MAX_ATTEMPTS + 1):
        job, _ = apply(job, progress("indexing", 90), T0 + attempt)
        job, payload = apply(job, error(retryAt=iso(T0 + 100)), T0 + attempt)
        assert payload["attempt"] == attempt
    assert job.status == Status.FAILED and payload["willRetry"] is False
    assert payload["retryAt"] is None and job.finished_at is not None
    with pytest.raises(Conflict):
        apply(job, progress("indexing", 95), T0 + 10)


def test_cancel_never_retries() -> None:
    job, _ = apply(queued(), progress("url_validation", 0), T0)
    job, payload = apply(job, error(code="cancelled", will_retry=True), T0 + 1)
    assert job.status == Status.FAILED and payload["willRetry"] is False
    assert job.error_code == "cancelled"


def test_completion_ends_the_job_and_counts_the_duration() -> None:
    job, _ = apply(queued(), progress("url_validation", 0), T0 + 10)
    job, payload = apply(
        job, {"type": "processing_complete", "jobId": "j1", "result": {"mindmapId": "m1"}}, T0 + 70
    )
    assert job.status == Status.COMPLETED and job.progress == 100 and job.stage == "completed"
    assert payload["durationSeconds"] == 60.0 and payload["result"] == {"mindmapId": "m1"}
    for message in (
        progress("indexing", 100),
        error(),
        {"type": "processing_complete", "jobId": "j1"},
    ):
        with pytest.raises(Conflict):
            apply(job, message, T0 + 71)


def test_queue_updates_only_for_queued_jobs() -> None:
    update = {
        "type": "queue_update",
        "jobId": "j1",
        "position": 2,
        "queueLength": 5,
        "estimatedWaitSeconds": 30.0,
        "estimatedStart": iso(T0 + 30),
    }
    job, payload = apply(queued(), update, T0)
    assert job.status == Status.QUEUED and payload["position"] == 2
    running, _ = apply(job, progress("url_validation", 0), T0)
    with pytest.raises(Conflict):
        apply(running, update, T0)


def test_unknown_message_type_is_invalid() -> None:
    with pytest.raises(Invalid):
        apply(queued(), {"type": "nope", "jobId": "j1"}, T0)


def test_state_shows_a_position_only_while_queued() -> None:
    assert queued().state(3)["position"] == 3
    job, _ = apply(queued(), progress("url_validation", 0), T0)
    assert job.state(3)["position"] is None and job.state(3)["status"] == "processing"


def test_iso_round_trips_with_milliseconds() -> None:
    assert iso(None) is None and parse_iso(None) is None
    assert iso(T0 + 0.25) == "2027-01-15T08:00:00.250Z"
    assert parse_iso(iso(T0 + 0.25)) == T0 + 0.25


def test_a_stage_change_is_a_sample_of_the_stage_that_ended() -> None:
    from realtime.domain.job import stage_sample

    job = Job(job_id="j", user_id="u", submitted_at=0.0)
    job, _ = apply(
        job,
        {"type": "progress_update", "jobId": "j", "stage": "url_validation", "progress": 1},
        10.0,
    )
    same, _ = apply(
        job,
        {"type": "progress_update", "jobId": "j", "stage": "url_validation", "progress": 2},
        11.0,
    )
    assert stage_sample(job, same, 11.0) is None, "still in the stage"
    moved, _ = apply(
        same,
        {
            "type": "progress_update",
            "jobId": "j",
            "stage": "transcript_generation",
            "progress": 11,
            "videoDurationSeconds": 300,
        },
        14.0,
    )
    assert stage_sample(same, moved, 14.0) == ("url_validation", 4.0, 300.0)
    done, _ = apply(moved, {"type": "processing_complete", "jobId": "j"}, 20.0)
    assert stage_sample(moved, done, 20.0) == ("transcript_generation", 6.0, 300.0)
    failed, _ = apply(
        moved,
        {"type": "processing_error", "jobId": "j", "error": "x", "code": "x", "willRetry": True},
        20.0,
    )
    assert stage_sample(moved, failed, 20.0) is None, "a failed stage is no sample"


def test_the_model_fills_an_estimate_only_where_the_publisher_gave_none() -> None:
    from realtime.domain.eta import NOMINAL_MODEL

    job = Job(job_id="j", user_id="u", submitted_at=0.0)
    msg = {"type": "progress_update", "jobId": "j", "stage": "indexing", "progress": 90}
    filled, payload = apply(job, msg, 100.0, NOMINAL_MODEL)
    assert filled.estimated_completion == pytest.approx(107.0)  # indexing: 7 s nominal
    own, payload = apply(
        filled,
        {**msg, "progress": 91, "estimatedCompletion": "2030-01-01T00:00:00.000Z"},
        101.0,
        NOMINAL_MODEL,
    )
    assert payload["estimatedCompletion"] == "2030-01-01T00:00:00.000Z"
    assert filled.updated_at == 100.0 and own.updated_at == 101.0
