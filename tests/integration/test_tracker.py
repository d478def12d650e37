"""Tracker as a real pipeline uses it, with no demo worker: titles, queue waits that need no
registered worker, declared slots, heartbeats, and the stall sweep, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from realtime.broadcast.base import NoBroadcast
from realtime.domain.errors import Invalid, NotFound
from realtime.domain.job import Status
from realtime.domain.times import parse_iso
from realtime.store.ledger import Ledger
from realtime.tracker import Tracker
from tests.support import Clock

VIDEO = "https://youtu.be/dQw4w9WgXcQ"


@pytest.fixture
def tracker(ledger: Ledger) -> Tracker:
    return Tracker(ledger, NoBroadcast())


async def last(ledger: Ledger, user: str) -> dict:
    read = await ledger.read_after(user, 0, 10**9)
    return read.messages[-1]


async def run_job(tracker: Tracker, clock: Clock, user: str, seconds: float = 10.0) -> str:
    job = await tracker.submit(user, VIDEO)
    await tracker.update_progress(job, "url_validation", 1)
    clock.now += seconds
    await tracker.complete(job, {"url": "/done"})
    return job


async def test_the_metadata_stage_names_the_job(tracker: Tracker, ledger: Ledger) -> None:
    job = await tracker.submit("ann", VIDEO)
    await tracker.update_progress(job, "url_validation", 2)
    await tracker.update_progress(
        job, "metadata_extraction", 5, video_title="Design talk", video_duration=600
    )
    m = await last(ledger, "ann")
    assert m["videoTitle"] == "Design talk" and m["videoDurationSeconds"] == 600
    snap = await ledger.snapshot("ann")
    assert snap["jobs"][0]["videoTitle"] == "Design talk"


async def test_queue_waits_are_numbers_once_one_job_has_finished(
    tracker: Tracker, ledger: Ledger, clock: Clock
) -> None:
    first = await tracker.submit("ann", VIDEO)
    assert (await last(ledger, "ann"))["estimatedWaitSeconds"] is None, "nothing known yet"
    await tracker.update_progress(first, "url_validation", 1)
    clock.now += 30
    await tracker.complete(first)
    await tracker.submit("ann", VIDEO)
    update = await last(ledger, "ann")
    assert update["estimatedWaitSeconds"] == 0.0, "one slot observed, free now"
    clock.now += 0.001  # submitted after ann's
    await tracker.submit("bob", VIDEO)
    behind = await last(ledger, "bob")
    assert behind["position"] == 2 and behind["estimatedWaitSeconds"] > 0
    assert parse_iso(behind["estimatedStart"]) == pytest.approx(
        clock.now + behind["estimatedWaitSeconds"], abs=0.01
    )


async def test_declared_slots_set_the_capacity(
    tracker: Tracker, ledger: Ledger, clock: Clock
) -> None:
    await run_job(tracker, clock, "ann")
    for _ in range(3):  # three jobs running at once: no slot is free
        job = await tracker.submit("ann", VIDEO)
        await tracker.update_progress(job, "url_validation", 1)
    await tracker.submit("bob", VIDEO)
    assert (await last(ledger, "bob"))["estimatedWaitSeconds"] > 0
    await tracker.heartbeat(slots=8, pipeline="transcoders")
    await tracker.submit("cat", VIDEO)
    assert (await last(ledger, "cat"))["estimatedWaitSeconds"] == 0.0, "five slots still free"
    with pytest.raises(Invalid):
        await tracker.heartbeat(slots=0)


async def test_the_publishers_own_estimate_wins_and_the_store_fills_in_the_rest(
    tracker: Tracker, ledger: Ledger, clock: Clock
) -> None:
    job = await tracker.submit("ann", VIDEO)
    await tracker.update_progress(job, "transcript_generation", 20)
    filled = parse_iso((await last(ledger, "ann"))["estimatedCompletion"])
    assert filled is not None and filled > clock.now
    await tracker.update_progress(
        job, "transcript_generation", 30, estimated_completion=clock.now + 5
    )
    assert parse_iso((await last(ledger, "ann"))["estimatedCompletion"]) == clock.now + 5


async def test_retry_in_is_the_retry_time(tracker: Tracker, ledger: Ledger, clock: Clock) -> None:
    job = await tracker.submit("ann", VIDEO)
    await tracker.update_progress(job, "url_validation", 1)
    await tracker.fail(job, "timeout", code="timeout", will_retry=True, retry_in=42)
    m = await last(ledger, "ann")
    assert m["willRetry"] is True and parse_iso(m["retryAt"]) == clock.now + 42
    with pytest.raises(Invalid):
        await tracker.fail(job, "x", code="x", will_retry=True, retry_in=1, retry_at=clock.now)


async def test_a_silent_job_ends_stalled_unless_it_heart_beats(
    tracker: Tracker, ledger: Ledger, clock: Clock
) -> None:
    quiet = await tracker.submit("ann", VIDEO)
    busy = await tracker.submit("ann", VIDEO)
    waiting = await tracker.submit("ann", VIDEO)
    for job in (quiet, busy):
        await tracker.update_progress(job, "transcript_generation", 20)
    await tracker.update_progress(waiting, "url_validation", 1)
    await tracker.fail(waiting, "later", code="busy", will_retry=True, retry_in=2000)
    clock.now += 600
    await tracker.heartbeat(busy)
    clock.now += 400  # quiet: 1,000 s without a word
    ended = await ledger.end_stalled(900)
    assert [s.payload["jobId"] for s in ended] == [quiet]
    p = ended[0].payload
    assert p["code"] == "stalled" and p["willRetry"] is False
    found = await ledger.job(quiet)
    assert found is not None and found[0].status == Status.FAILED
    assert await ledger.end_stalled(900) == [], "each job ends once"
    assert (await ledger.job(waiting))[0].status == Status.RETRYING, "its retry is not due yet"
    with pytest.raises(NotFound):
        await tracker.heartbeat(quiet)


async def test_cancel_from_a_backend(tracker: Tracker, ledger: Ledger) -> None:
    job = await tracker.submit("ann", VIDEO)
    await tracker.cancel(job)
    m = await last(ledger, "ann")
    assert m["code"] == "cancelled" and m["willRetry"] is False
