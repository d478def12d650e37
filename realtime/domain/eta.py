"""Pure time estimates from stage history. No I/O; every clock reading is passed in.

The model is one expected length per work stage at speed 1: the robust median of the recent
measured samples of that stage (each sample is a measured duration times the worker's speed),
or the nominal length while a stage has no sample yet. A job's remaining time is what is left
of its current stage plus the later stages; a queued job's wait comes from placing the jobs
ahead of it, in order, on the live worker slots.
"""

from __future__ import annotations

import heapq
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .job import WORK_STAGES

# Nominal stage lengths at speed 1; they sum to 60 s, the demo worker's "about a minute".
NOMINAL: dict[str, float] = {
    "url_validation": 2.0,
    "metadata_extraction": 5.0,
    "transcript_generation": 18.0,
    "content_analysis": 12.0,
    "mindmap_generation": 11.0,
    "data_storage": 5.0,
    "indexing": 7.0,
}
NOMINAL_TOTAL = sum(NOMINAL.values())
# How many recent samples per stage feed the estimate.
WINDOW = 50
# A queued job's estimatedStart is worth a new queue_update when it moves by more than
# max(START_MOVE_SECONDS, START_MOVE_FRACTION of the wait).
START_MOVE_SECONDS = 10.0
START_MOVE_FRACTION = 0.25


@dataclass(frozen=True)
class Capacity:
    """The live worker slots (summed concurrency) and their slot-weighted mean speed."""

    slots: int
    speed: float


@dataclass(frozen=True)
class Model:
    """Expected seconds per stage at speed 1."""

    stage_seconds: Mapping[str, float]

    @property
    def job_seconds(self) -> float:
        return sum(self.stage_seconds[s] for s in WORK_STAGES)


NOMINAL_MODEL = Model(dict(NOMINAL))


def robust_center(samples: Sequence[float]) -> float:
    """Median after dropping values beyond 3 median absolute deviations: one stuck job or one
    cache hit does not move the estimate."""
    med = statistics.median(samples)
    mad = statistics.median(abs(s - med) for s in samples)
    if mad == 0:
        return med
    kept = [s for s in samples if abs(s - med) <= 3 * 1.4826 * mad]
    return statistics.median(kept) if kept else med


def build_model(samples: Mapping[str, Iterable[float]]) -> Model:
    """Measured stage lengths where there are samples (oldest first; the last WINDOW count),
    nominal lengths elsewhere."""
    out: dict[str, float] = {}
    for stage in WORK_STAGES:
        values = [v for v in samples.get(stage, ()) if v >= 0 and math.isfinite(v)][-WINDOW:]
        out[stage] = robust_center(values) if values else NOMINAL[stage]
    return Model(out)


def remaining_seconds(model: Model, stage: str | None, stage_elapsed: float, speed: float) -> float:
    """Expected seconds until a running job in `stage` (for `stage_elapsed` s) completes;
    `stage` None: a job that has not started."""
    if stage is None:
        return model.job_seconds / speed
    if stage not in WORK_STAGES:
        return 0.0
    i = WORK_STAGES.index(stage)
    expected = model.stage_seconds[stage] / speed
    current = expected - max(stage_elapsed, 0.0)
    # A stage already longer than expected is assumed to be nearly done, not finished.
    current = max(current, min(expected * 0.1, 1.0))
    later = sum(model.stage_seconds[s] for s in WORK_STAGES[i + 1 :]) / speed
    return current + later


def wait_schedule(
    count: int, running_remaining: Sequence[float], cap: Capacity, model: Model
) -> list[float]:
    """Seconds until a slot starts each of the first `count` queued jobs (index 0 = position
    1): they are placed in order on the slots; each running job holds its slot for its
    remaining time; a free slot starts the next job at once."""
    slots = max(cap.slots, 1)
    busy = sorted(max(r, 0.0) for r in running_remaining)[:slots]
    free_at = [0.0] * (slots - len(busy)) + busy
    heapq.heapify(free_at)
    per_job = model.job_seconds / cap.speed
    out: list[float] = []
    for _ in range(count):
        t = heapq.heappop(free_at)
        out.append(round(t, 3))
        heapq.heappush(free_at, t + per_job)
    return out


def wait_seconds(
    ahead: int, running_remaining: Sequence[float], cap: Capacity, model: Model
) -> float:
    """Seconds until a slot starts a job with `ahead` queued jobs before it."""
    return wait_schedule(ahead + 1, running_remaining, cap, model)[-1]


def start_moved(old_start: float | None, new_start: float | None, wait: float | None) -> bool:
    """Whether a queued job's estimatedStart moved enough to tell its user: from or to
    unknown, or by more than max(10 s, 25 % of the wait). Counting down is no move."""
    if old_start is None or new_start is None:
        return (old_start is None) != (new_start is None)
    threshold = max(START_MOVE_SECONDS, START_MOVE_FRACTION * max(wait or 0.0, 0.0))
    return abs(new_start - old_start) > threshold


def progress_at(stage: str, fraction: float) -> int:
    """Overall progress (0-100) of a job `fraction` of the way through `stage`: the stages
    weigh their nominal lengths, so progress moves evenly across the whole job."""
    i = WORK_STAGES.index(stage)
    before = sum(NOMINAL[s] for s in WORK_STAGES[:i])
    f = min(max(fraction, 0.0), 1.0)
    return min(100, math.floor(100 * (before + f * NOMINAL[stage]) / NOMINAL_TOTAL + 1e-9))
