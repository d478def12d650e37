"""The estimator: cold start, learning, outliers, slots; every clock reading passed in."""

from __future__ import annotations

import math
import random

import pytest

from realtime.domain import eta
from realtime.domain.job import WORK_STAGES
from realtime.store.queue import Outlook

NOW = 1_800_000_000.0  # the injected "clock": estimates only ever see this number


def test_nominal_stage_lengths_sum_to_a_minute() -> None:
    assert set(eta.NOMINAL) == set(WORK_STAGES)
    assert abs(eta.NOMINAL_TOTAL - 60.0) < 1e-9


def test_cold_start_uses_nominal_lengths_divided_by_speed() -> None:
    model = eta.build_model({})
    assert model.stage_seconds == eta.NOMINAL
    assert model.job_seconds == pytest.approx(60.0)
    assert eta.remaining_seconds(model, None, 0.0, speed=4) == pytest.approx(15.0)
    assert eta.remaining_seconds(model, "url_validation", 0.0, speed=1) == pytest.approx(60.0)


def test_one_finished_job_is_enough_to_learn_from() -> None:
    measured = {s: [eta.NOMINAL[s] * 2] for s in WORK_STAGES}
    model = eta.build_model(measured)
    assert model.job_seconds == pytest.approx(120.0)


def test_stages_without_samples_keep_their_nominal_length() -> None:
    model = eta.build_model({"transcript_generation": [30.0, 32.0, 34.0]})
    assert model.stage_seconds["transcript_generation"] == pytest.approx(32.0)
    assert model.stage_seconds["indexing"] == eta.NOMINAL["indexing"]


def test_outliers_do_not_move_the_estimate() -> None:
    samples = [10.0, 11.0, 9.5, 10.5, 10.2, 9.8, 600.0, 0.01]
    assert eta.robust_center(samples) == pytest.approx(10.1, abs=0.2)
    model = eta.build_model({"indexing": samples})
    assert 9.5 <= model.stage_seconds["indexing"] <= 10.5


def test_identical_samples_and_bad_values() -> None:
    assert eta.robust_center([5.0, 5.0, 5.0]) == 5.0
    model = eta.build_model({"indexing": [-1.0, math.nan, math.inf, 4.0]})
    assert model.stage_seconds["indexing"] == 4.0


def test_only_the_most_recent_window_counts() -> None:
    old = [100.0] * 200
    recent = [20.0] * eta.WINDOW
    model = eta.build_model({"content_analysis": old + recent})
    assert model.stage_seconds["content_analysis"] == 20.0


def test_remaining_time_counts_the_rest_of_the_stage_and_the_later_stages() -> None:
    model = eta.build_model({})
    later = sum(eta.NOMINAL[s] for s in WORK_STAGES[WORK_STAGES.index("mindmap_generation") + 1 :])
    r = eta.remaining_seconds(model, "mindmap_generation", 4.0, speed=1)
    assert r == pytest.approx(11.0 - 4.0 + later)
    assert eta.remaining_seconds(model, "mindmap_generation", 2.0, speed=2) == pytest.approx(
        (11.0 / 2 - 2.0) + later / 2
    )
    assert eta.remaining_seconds(model, "completed", 0.0, speed=1) == 0.0


def test_an_overrunning_stage_is_nearly_done_and_never_goes_up_again() -> None:
    model = eta.build_model({})
    values = [
        eta.remaining_seconds(model, "indexing", t, speed=1) for t in (0, 3, 6, 6.9, 7, 20, 600)
    ]
    assert values == sorted(values, reverse=True)
    assert values[-1] == pytest.approx(0.7)  # 10 % of the stage, at most 1 s
    assert all(v > 0 for v in values)


def test_wait_is_zero_while_a_slot_is_free() -> None:
    model = eta.build_model({})
    cap = eta.Capacity(slots=2, speed=1.0)
    assert eta.wait_seconds(0, [30.0], cap, model) == 0.0
    assert eta.wait_seconds(0, [], cap, model) == 0.0
    # the second job in line takes the slot the running job frees
    assert eta.wait_seconds(1, [30.0], cap, model) == pytest.approx(30.0)


def test_jobs_ahead_are_placed_in_order_on_the_slots() -> None:
    model = eta.build_model({})  # 60 s a job at speed 1
    cap = eta.Capacity(slots=2, speed=2.0)  # 30 s a job
    running = [10.0, 20.0]
    waits = eta.wait_schedule(5, running, cap, model)
    assert waits == [10.0, 20.0, 40.0, 50.0, 70.0]
    assert eta.wait_seconds(4, running, cap, model) == 70.0


def test_more_running_jobs_than_live_slots_keep_the_soonest() -> None:
    model = eta.build_model({})
    cap = eta.Capacity(slots=1, speed=1.0)
    assert eta.wait_seconds(0, [50.0, 5.0, 30.0], cap, model) == 5.0


def test_outlook_without_live_workers_has_no_estimate() -> None:
    assert Outlook(None, eta.NOMINAL_MODEL, ()).waits(3) is None
    assert Outlook(None, eta.NOMINAL_MODEL, ()).wait(0) is None
    live = Outlook(eta.Capacity(1, 1.0), eta.NOMINAL_MODEL, (12.0,))
    assert live.wait(0) == 12.0 and live.waits(2) == [12.0, 72.0]


def test_estimated_start_moves_only_by_more_than_10s_or_25_percent() -> None:
    assert not eta.start_moved(NOW + 100, NOW + 100, 100)  # counting down is no move
    assert not eta.start_moved(NOW + 100, NOW + 109, 5)
    assert eta.start_moved(NOW + 100, NOW + 111, 5)
    assert not eta.start_moved(NOW + 400, NOW + 480, 400)  # 80 s < 25 % of 400 s
    assert eta.start_moved(NOW + 400, NOW + 520, 400)
    assert eta.start_moved(None, NOW + 5, 5)  # a worker came up
    assert eta.start_moved(NOW + 5, None, None)  # the last worker went away
    assert not eta.start_moved(None, None, None)


def test_progress_moves_evenly_across_the_whole_job() -> None:
    points = [eta.progress_at(s, f / 10) for s in WORK_STAGES for f in range(11)]
    assert points[0] == 0
    assert points == sorted(points)
    assert eta.progress_at("indexing", 1.0) == 100
    assert eta.progress_at("transcript_generation", 0.0) == 11  # 7 s of 60 s behind it
    assert eta.progress_at("url_validation", 7.0) == eta.progress_at("metadata_extraction", 0.0)


def _simulated_job(rng: random.Random, speed: float) -> dict[str, float]:
    """Stage lengths as the demo worker draws them: nominal +-30 %, divided by speed."""
    return {s: eta.NOMINAL[s] * rng.uniform(0.7, 1.3) / speed for s in WORK_STAGES}


@pytest.mark.parametrize("speed", [1.0, 8.0, 150.0])
def test_estimates_learn_to_within_2x_of_simulated_jobs(speed: float) -> None:
    """Jobs whose stages run 1.6x longer than nominal: a few finished jobs bring the
    estimate of a new job, at start and halfway, within 2x of its real length."""
    rng = random.Random(7)
    samples: dict[str, list[float]] = {s: [] for s in WORK_STAGES}
    errors = []
    for n in range(6):
        job = {s: v * 1.6 for s, v in _simulated_job(rng, speed).items()}
        model = eta.build_model(samples)
        real = sum(job.values())
        at_start = eta.remaining_seconds(model, WORK_STAGES[0], 0.0, speed)
        half_stage = WORK_STAGES[3]
        done = sum(job[s] for s in WORK_STAGES[:3])
        halfway = eta.remaining_seconds(model, half_stage, job[half_stage] / 2, speed)
        real_halfway = real - done - job[half_stage] / 2
        errors.append((n, at_start / real, halfway / real_halfway))
        for s, v in job.items():
            samples[s].append(v * speed)  # what the worker records: normalised to speed 1
    for n, start_ratio, half_ratio in errors[3:]:
        assert 0.5 <= start_ratio <= 2.0, (n, start_ratio)
        assert 0.5 <= half_ratio <= 2.0, (n, half_ratio)
    # and learning helped: after history the start estimate is better than the nominal one
    assert abs(1 - errors[-1][1]) < abs(1 - errors[0][1])


def test_queue_wait_learns_to_within_2x_with_concurrency() -> None:
    """Three slots draining a queue of simulated jobs: the wait predicted for each queued job
    (from the jobs ahead and the running ones) is within 2x of when it really starts."""
    rng = random.Random(3)
    speed = 20.0
    samples = {s: [eta.NOMINAL[s] * 1.3] for s in WORK_STAGES}  # history of slow jobs
    model = eta.build_model(samples)
    cap = eta.Capacity(slots=3, speed=speed)
    lengths = [sum(_simulated_job(rng, speed).values()) * 1.3 for _ in range(12)]
    # the simulation: each slot takes the next job when it frees
    free = [0.0, 0.0, 0.0]
    starts = []
    for length in lengths:
        i = min(range(3), key=free.__getitem__)
        starts.append(free[i])
        free[i] += length
    # at t=1.0 the first three run; predict the waits of the other nine
    t = 1.0
    running = [starts[i] + lengths[i] - t for i in range(3)]
    predicted = eta.wait_schedule(9, running, cap, model)
    for k, p in enumerate(predicted):
        real = starts[3 + k] - t
        assert real / 2 <= p <= real * 2, (k, p, real)


def test_most_at_once_counts_overlaps_not_touching_spans() -> None:
    from realtime.domain.eta import most_at_once

    assert most_at_once([]) == 0
    assert most_at_once([(0, 10), (10, 20)]) == 1, "one ends as the next starts"
    assert most_at_once([(0, 10), (5, 15), (6, 7), (20, 30)]) == 3
    assert most_at_once([(5, 5)]) == 0, "an empty span ran nothing"


def test_scaling_stages_learn_a_rate_from_samples_with_a_video_length() -> None:
    from realtime.domain.eta import MIN_RATE_SAMPLES, build_model, remaining_seconds

    per_minute = [(60.0, 600.0), (66.0, 600.0), (30.0, 300.0)]  # 0.1 s per second of video
    model = build_model({"transcript_generation": per_minute, "indexing": [(3.0, 600.0)] * 5})
    assert len(per_minute) >= MIN_RATE_SAMPLES
    assert model.stage_rates["transcript_generation"] == pytest.approx(0.1)
    assert "indexing" not in model.stage_rates, "indexing does not grow with the video"
    assert model.stage_length("transcript_generation", 1200) == pytest.approx(120.0)
    assert model.stage_length("transcript_generation", None) == pytest.approx(63.0)  # robust median
    short = remaining_seconds(model, "transcript_generation", 0.0, 1.0, video_seconds=300)
    long = remaining_seconds(model, "transcript_generation", 0.0, 1.0, video_seconds=3000)
    assert long - short == pytest.approx(0.1 * 2700, rel=0.01)


def test_progress_within_a_stage_moves_the_estimate() -> None:
    from realtime.domain.eta import NOMINAL_MODEL, fraction_by_progress, remaining_seconds

    assert fraction_by_progress("transcript_generation", 11, 11) == 0.0
    assert fraction_by_progress("transcript_generation", 11, 26) == pytest.approx(0.5, abs=0.02)
    assert fraction_by_progress("transcript_generation", 50, 60) == 0.0, "past the band: no news"
    at_start = remaining_seconds(NOMINAL_MODEL, "transcript_generation", 0.0, 1.0)
    halfway = remaining_seconds(
        NOMINAL_MODEL, "transcript_generation", 0.0, 1.0, stage_fraction=0.5
    )
    assert at_start - halfway == pytest.approx(9.0)
