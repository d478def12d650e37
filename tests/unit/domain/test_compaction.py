"""Replay compaction: superseded progress updates go, everything else stays, order is kept."""

from realtime.domain.compaction import compact


def m(seq: int, kind: str, job: str) -> dict[str, object]:
    return {"seq": seq, "type": kind, "jobId": job}


def test_progress_followed_by_same_job_message_is_dropped() -> None:
    kept, omitted = compact([m(1, "progress_update", "a"), m(2, "progress_update", "a")])
    assert [x["seq"] for x in kept] == [2] and omitted == 1


def test_progress_of_other_jobs_is_kept() -> None:
    batch = [m(1, "progress_update", "a"), m(2, "progress_update", "b")]
    assert compact(batch) == (batch, 0)


def test_non_progress_types_are_never_dropped() -> None:
    batch = [
        m(1, "queue_update", "a"),
        m(2, "queue_update", "a"),
        m(3, "processing_error", "a"),
        m(4, "progress_update", "a"),
        m(5, "processing_complete", "a"),
    ]
    kept, omitted = compact(batch)
    assert [x["seq"] for x in kept] == [1, 2, 3, 5] and omitted == 1


def test_kept_plus_omitted_covers_the_range() -> None:
    batch = [m(i, "progress_update", "ab"[i % 2]) for i in range(1, 101)]
    kept, omitted = compact(batch)
    assert len(kept) + omitted == 100 and [x["seq"] for x in kept] == [99, 100]


def test_empty_batch() -> None:
    assert compact([]) == ([], 0)
