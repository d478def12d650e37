"""Read-side view of the one global FIFO queue: positions, length, and wait estimates.

Order: `submitted_at`, then `job_id`, over jobs with status `queued` (index ix_jobs_queue).
Estimates follow the contract: the jobs ahead are placed in order on the live slots, each
running job holding its slot until its estimatedCompletion. The slots are the summed
concurrency of the workers (and pipelines that declared slots) that heart-beat recently;
without any, the most jobs seen running at once over the last hour (a pipeline that only
publishes gets estimates as soon as one job has finished). Both are None when neither tells.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, or_, select

from ..domain import eta
from ..domain.job import Job, Status
from ..domain.times import iso
from .tables import jobs as jobs_t
from .tables import stage_samples, workers

# A worker whose heartbeat is older than this holds no slot in the estimates.
WORKER_LIVE_SECONDS = 15.0
# Keep IN lists well below every backend's parameter limit.
_CHUNK = 500
# Observed capacity: the most jobs running at once among the last OBSERVED_JOBS jobs that ran
# within OBSERVED_SECONDS.
OBSERVED_SECONDS = 3600.0
OBSERVED_JOBS = 1000


def load_model(conn: Connection) -> eta.Model:
    """The estimator's model from the most recent stage samples."""
    rows = (
        conn.execute(
            select(stage_samples.c.stage, stage_samples.c.seconds, stage_samples.c.video_seconds)
            .order_by(stage_samples.c.id.desc())
            .limit(eta.WINDOW * len(eta.NOMINAL))
        )
    ).all()
    samples: dict[str, list[eta.Sample]] = {}
    for r in reversed(rows):
        video = float(r.video_seconds) if r.video_seconds is not None else None
        samples.setdefault(r.stage, []).append((float(r.seconds), video))
    return eta.build_model(samples)


def _ahead_clause(job: Job) -> Any:
    return and_(
        jobs_t.c.status == Status.QUEUED.value,
        or_(
            jobs_t.c.submitted_at < job.submitted_at,
            and_(jobs_t.c.submitted_at == job.submitted_at, jobs_t.c.job_id < job.job_id),
        ),
    )


def _positions_query() -> Any:
    """Each job of `:ids` that is still queued, with the count of queued jobs ahead of it."""
    ahead_of = jobs_t.alias("ahead_of")
    ahead = (
        select(func.count())
        .select_from(ahead_of)
        .where(
            ahead_of.c.status == Status.QUEUED.value,
            or_(
                ahead_of.c.submitted_at < jobs_t.c.submitted_at,
                and_(
                    ahead_of.c.submitted_at == jobs_t.c.submitted_at,
                    ahead_of.c.job_id < jobs_t.c.job_id,
                ),
            ),
        )
        .scalar_subquery()
    )
    return select(jobs_t.c.job_id, ahead).where(
        jobs_t.c.job_id.in_(bindparam("ids", expanding=True)),
        jobs_t.c.status == Status.QUEUED.value,
    )


# Built once: constructing the aliased subquery costs more than running it.
_POSITIONS = _positions_query()


@dataclass(frozen=True)
class Outlook:
    """What the wait estimates of one moment rest on: live slots, the model, and the time
    each job holding a live slot still needs."""

    capacity: eta.Capacity | None
    model: eta.Model
    running: tuple[float, ...]

    def waits(self, count: int) -> list[float] | None:
        """Waits of queue positions 1..count; None when no worker is live."""
        if self.capacity is None:
            return None
        return eta.wait_schedule(count, self.running, self.capacity, self.model)

    def wait(self, ahead: int) -> float | None:
        waits = self.waits(ahead + 1)
        return waits[-1] if waits else None


class QueueView:
    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock

    def length(self, conn: Connection) -> int:
        q = select(func.count()).select_from(jobs_t).where(jobs_t.c.status == Status.QUEUED.value)
        return int(conn.execute(q).scalar() or 0)

    def ahead_and_length(self, conn: Connection, job: Job) -> tuple[int, int]:
        """How many queued jobs are ahead of `job`, and how many are queued in all."""
        q = select(
            func.count().filter(_ahead_clause(job)),
            func.count(),
        ).where(jobs_t.c.status == Status.QUEUED.value)
        ahead, length = conn.execute(q).one()
        return int(ahead or 0), int(length or 0)

    def positions(self, conn: Connection, queued: Sequence[Job]) -> dict[str, int]:
        """Queue positions of `queued` jobs: one query per 500 jobs, each an index range
        count per job (not a scan of the whole queue)."""
        out: dict[str, int] = {}
        ids = [j.job_id for j in queued]
        for i in range(0, len(ids), _CHUNK):
            for job_id, n in conn.execute(_POSITIONS, {"ids": ids[i : i + _CHUNK]}):
                out[job_id] = int(n) + 1
        return out

    def capacity(self, conn: Connection) -> eta.Capacity | None:
        """Declared slots (live workers) and their slot-weighted mean speed; else the observed
        concurrency at speed 1; None when neither is known."""
        return self.declared_capacity(conn) or self.observed_capacity(conn)

    def observed_capacity(self, conn: Connection) -> eta.Capacity | None:
        """The most jobs that ran at once recently (finished ones and those running now)."""
        now = self.clock()
        rows = conn.execute(
            select(jobs_t.c.started_at, jobs_t.c.finished_at, jobs_t.c.status)
            .where(
                jobs_t.c.started_at.is_not(None),
                or_(
                    jobs_t.c.status == Status.PROCESSING.value,
                    and_(
                        jobs_t.c.status == Status.COMPLETED.value,
                        jobs_t.c.finished_at >= now - OBSERVED_SECONDS,
                    ),
                ),
            )
            .order_by(jobs_t.c.started_at.desc())
            .limit(OBSERVED_JOBS)
        ).all()
        spans = [
            (float(r.started_at), now if r.status == Status.PROCESSING else float(r.finished_at))
            for r in rows
        ]
        most = eta.most_at_once(spans)
        return eta.Capacity(slots=most, speed=1.0) if most > 0 else None

    def declared_capacity(self, conn: Connection) -> eta.Capacity | None:
        cutoff = self.clock() - WORKER_LIVE_SECONDS
        row = conn.execute(
            select(
                func.coalesce(func.sum(workers.c.concurrency), 0),
                func.coalesce(func.sum(workers.c.concurrency * workers.c.speed), 0.0),
            ).where(workers.c.heartbeat_at >= cutoff)
        ).one()
        slots = int(row[0] or 0)
        if slots <= 0:
            return None
        return eta.Capacity(slots=slots, speed=float(row[1] or slots) / slots)

    def running_remaining(self, conn: Connection, model: eta.Model) -> list[float]:
        """Expected seconds left for every job holding a slot now (a live worker's, or a
        pipeline's that claims nothing): until its estimatedCompletion, or from the model when
        it has none or has overrun it."""
        now = self.clock()
        cutoff = now - WORKER_LIVE_SECONDS
        rows = (
            conn.execute(
                select(
                    jobs_t.c.stage,
                    jobs_t.c.stage_started_at,
                    jobs_t.c.estimated_completion,
                    jobs_t.c.speed,
                    jobs_t.c.video_duration,
                )
                .outerjoin(workers, workers.c.worker_id == jobs_t.c.worker_id)
                .where(
                    jobs_t.c.status == Status.PROCESSING.value,
                    or_(jobs_t.c.worker_id.is_(None), workers.c.heartbeat_at >= cutoff),
                )
            )
        ).all()
        out = []
        for r in rows:
            if r.estimated_completion is not None and r.estimated_completion > now:
                out.append(float(r.estimated_completion) - now)
                continue
            elapsed = now - (r.stage_started_at if r.stage_started_at is not None else now)
            speed = float(r.speed) if r.speed else 1.0
            out.append(
                eta.remaining_seconds(
                    model, r.stage, elapsed, speed, video_seconds=r.video_duration
                )
            )
        return out

    def outlook(self, conn: Connection) -> Outlook:
        cap = self.capacity(conn)
        model = load_model(conn)
        running = self.running_remaining(conn, model) if cap is not None else []
        return Outlook(cap, model, tuple(running))

    def estimate_wait(self, conn: Connection, ahead: int) -> float | None:
        """Seconds until a slot starts a job with `ahead` queued jobs before it (None: no
        live worker)."""
        return self.outlook(conn).wait(ahead)

    def status_for(self, conn: Connection, user_id: str) -> dict[str, Any]:
        rows = (
            conn.execute(
                select(jobs_t.c.job_id, jobs_t.c.submitted_at)
                .where(jobs_t.c.user_id == user_id, jobs_t.c.status == Status.QUEUED.value)
                .order_by(jobs_t.c.submitted_at, jobs_t.c.job_id)
            )
        ).all()
        length = self.length(conn)
        now = self.clock()
        queued = [Job(job_id=r.job_id, user_id=user_id, submitted_at=r.submitted_at) for r in rows]
        positions = self.positions(conn, queued) if queued else {}
        waits: list[float] | None = None
        if positions:
            waits = self.outlook(conn).waits(max(positions.values()))
        out = []
        for job in queued:
            pos = positions.get(job.job_id)
            if pos is None:  # left the queue between the two reads
                continue
            wait = waits[pos - 1] if waits is not None else None
            out.append(
                {
                    "jobId": job.job_id,
                    "position": pos,
                    "estimatedWaitSeconds": wait,
                    "estimatedStart": iso(now + wait) if wait is not None else None,
                }
            )
        return {"queueLength": length, "jobs": out}
