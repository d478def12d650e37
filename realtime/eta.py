"""Pure time estimates from stage history. No I/O; every clock reading is passed in."""

from __future__ import annotations

import heapq
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .jobs import WORK_STAGES

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
# How many recent samples per stage feed the estimate.
WINDOW = 50


@dataclass(frozen=True)
class Capacity:
    slots: int
    speed: float


@dataclass(frozen=True)
class Model:
    """Expected seconds per stage at speed 1."""

    stage_seconds: Mapping[str, float]

    @property
    def job_seconds(self) -> float:
        return sum(self.stage_seconds[s] for s in WORK_STAGES)


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
    """Measured stage lengths where there are samples, nominal lengths elsewhere."""
    out: dict[str, float] = {}
    for stage in WORK_STAGES:
        values = [v for v in samples.get(stage, ()) if v >= 0][-WINDOW:]
        out[stage] = robust_center(values) if values else NOMINAL[stage]
    return Model(out)


def remaining_seconds(
    model: Model, stage: str | None, stage_elapsed: float, speed: float
) -> float:
    """Expected seconds until a running job in `stage` (for `stage_elapsed` s) completes."""
    if stage is None or stage not in WORK_STAGES:
        return model.job_seconds / speed if stage is None else 0.0
    i = WORK_STAGES.index(stage)
    current = max(model.stage_seconds[stage] / speed - stage_elapsed, 0.0)
    # A stage already longer than expected is assumed to be nearly done, not finished.
    if current == 0.0:
        current = min(model.stage_seconds[stage] / speed * 0.1, 1.0)
    later = sum(model.stage_seconds[s] for s in WORK_STAGES[i + 1 :]) / speed
    return current + later


def wait_seconds(
    ahead: int, running_remaining: Sequence[float], cap: Capacity, model: Model
) -> float:
    """Seconds until a slot starts a job with `ahead` queued jobs before it: the jobs ahead are
    placed in order on the slots; each running job holds its slot for its remaining time."""
    slots = max(cap.slots, 1)
    busy = sorted(max(r, 0.0) for r in running_remaining)[:slots]
    free_at = [0.0] * (slots - len(busy)) + busy
    heapq.heapify(free_at)
    per_job = model.job_seconds / cap.speed
    for _ in range(ahead):
        t = heapq.heappop(free_at)
        heapq.heappush(free_at, t + per_job)
    return round(free_at[0], 3)
