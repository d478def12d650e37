"""Pure time estimates from stage history. No I/O; every clock reading is passed in.

The model is one expected length per work stage at speed 1: the robust median of the recent
measured samples of that stage (each sample is a measured duration times the worker's speed),
or the nominal length while a stage has no sample yet. Samples come from the stage transitions
of every job the store writes, whoever publishes them. The stages whose time grows with the
video (SCALING_STAGES) also learn a rate, seconds per second of video, from the samples whose
publisher reported the video's length; a job of known length is estimated by that rate. A job's remaining time is what is left
of its current stage plus the later stages; a queued job's wait comes from placing the jobs
ahead of it, in order, on the live worker slots.
"""

from __future__ import annotations

import functools
import heapq
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .stages import WORK_STAGES

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
# Stages whose length grows with the video's; a rate needs this many samples with a length.
SCALING_STAGES = ("transcript_generation", "content_analysis", "mindmap_generation")
MIN_RATE_SAMPLES = 3
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
    """Expected seconds per stage at speed 1, and seconds per second of video for the scaling
    stages that have learned one."""

    stage_seconds: Mapping[str, float]
    stage_rates: Mapping[str, float] = field(default_factory=dict)

    def stage_length(self, stage: str, video_seconds: float | None = None) -> float:
        rate = self.stage_rates.get(stage)
        if rate is not None and video_seconds is not None and video_seconds > 0:
            return rate * video_seconds
        return self.stage_seconds[stage]

    def job_length(self, video_seconds: float | None = None) -> float:
        return sum(self.stage_length(s, video_seconds) for s in WORK_STAGES)

    def after(self, stage: str, video_seconds: float | None = None) -> float:
        """Expected seconds of the stages after `stage` (a work stage)."""
        if video_seconds is None or not self.stage_rates:
            return self._after[stage]  # every store write asks: precomputed
        i = WORK_STAGES.index(stage)
        return sum(self.stage_length(s, video_seconds) for s in WORK_STAGES[i + 1 :])

    @functools.cached_property
    def _after(self) -> dict[str, float]:
        return {
            stage: sum(self.stage_seconds[s] for s in WORK_STAGES[i + 1 :])
            for i, stage in enumerate(WORK_STAGES)
        }

    @property
    def job_seconds(self) -> float:
        return self.job_length()


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


Sample = float | tuple[float, float | None]  # seconds, or (seconds, video length)


def _ok(v: float) -> bool:
    return v >= 0 and math.isfinite(v)


def build_model(samples: Mapping[str, Iterable[Sample]]) -> Model:
    """Measured stage lengths where there are samples (oldest first; the last WINDOW count),
    nominal lengths elsewhere; rates for the scaling stages with samples of known length."""
    out: dict[str, float] = {}
    rates: dict[str, float] = {}
    for stage in WORK_STAGES:
        pairs = [v if isinstance(v, tuple) else (v, None) for v in samples.get(stage, ())]
        pairs = [(sec, vid) for sec, vid in pairs if _ok(sec)][-WINDOW:]
        out[stage] = robust_center([sec for sec, _ in pairs]) if pairs else NOMINAL[stage]
        if stage in SCALING_STAGES:
            per = [sec / vid for sec, vid in pairs if vid is not None and vid > 0 and _ok(vid)]
            if len(per) >= MIN_RATE_SAMPLES:
                rates[stage] = robust_center(per)
    return Model(out, rates)


def remaining_seconds(
    model: Model,
    stage: str | None,
    stage_elapsed: float,
    speed: float,
    *,
    video_seconds: float | None = None,
    stage_fraction: float = 0.0,
) -> float:
    """Expected seconds until a running job in `stage` (for `stage_elapsed` s, `stage_fraction`
    of the way through it by its progress) completes; `stage` None: a job not started yet."""
    if stage is None:
        return model.job_length(video_seconds) / speed
    if stage not in WORK_STAGES:
        return 0.0
    expected = model.stage_length(stage, video_seconds) / speed
    done = max(max(stage_elapsed, 0.0), expected * min(max(stage_fraction, 0.0), 1.0))
    # A stage already longer than expected is assumed to be nearly done, not finished.
    current = max(expected - done, min(expected * 0.1, 1.0))
    return current + model.after(stage, video_seconds) / speed


def fraction_by_progress(stage: str, stage_start: int, progress: int) -> float:
    """How far through `stage` a job is by its progress: from where the stage began to the
    stage's end on the nominal scale (progress_at); 0 when that tells nothing."""
    if stage not in WORK_STAGES:
        return 0.0
    end = progress_at(stage, 1.0)
    if end <= stage_start:
        return 0.0
    return min(max((progress - stage_start) / (end - stage_start), 0.0), 1.0)


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


_BEFORE = {stage: sum(NOMINAL[s] for s in WORK_STAGES[:i]) for i, stage in enumerate(WORK_STAGES)}


def progress_at(stage: str, fraction: float) -> int:
    """Overall progress (0-100) of a job `fraction` of the way through `stage`: the stages
    weigh their nominal lengths, so progress moves evenly across the whole job."""
    before = _BEFORE[stage]
    f = min(max(fraction, 0.0), 1.0)
    return min(100, math.floor(100 * (before + f * NOMINAL[stage]) / NOMINAL_TOTAL + 1e-9))


def most_at_once(spans: Iterable[tuple[float, float]]) -> int:
    """The most intervals (start, end) that overlap at any moment; touching ones do not."""
    edges = sorted(
        [(start, 1) for start, end in spans if end > start]
        + [(end, -1) for start, end in spans if end > start]
    )
    most = running = 0
    for _, step in edges:  # at equal times an end (-1) sorts before a start
        running += step
        most = max(most, running)
    return most
