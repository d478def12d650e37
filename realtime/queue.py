"""Read-side view of the one global FIFO queue: positions, length, and wait estimates."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from . import eta
from .db import jobs as jobs_t
from .db import stage_samples, workers
from .jobs import Job, Status, iso

WORKER_LIVE_SECONDS = 15.0


async def load_model(conn: AsyncConnection) -> eta.Model:
    """The estimator's model from the most recent stage samples."""
    rows = (
        await conn.execute(
            select(stage_samples.c.stage, stage_samples.c.seconds)
            .order_by(stage_samples.c.id.desc())
            .limit(eta.WINDOW * len(eta.NOMINAL))
        )
    ).all()
    samples: dict[str, list[float]] = {}
    for r in reversed(rows):
        samples.setdefault(r.stage, []).append(float(r.seconds))
    return eta.build_model(samples)


def _ahead_clause(job: Job) -> Any:
    return and_(
        jobs_t.c.status == Status.QUEUED.value,
        or_(
            jobs_t.c.submitted_at < job.submitted_at,
            and_(jobs_t.c.submitted_at == job.submitted_at, jobs_t.c.job_id < job.job_id),
        ),
    )


class QueueView:
    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock

    async def length(self, conn: AsyncConnection) -> int:
        q = select(func.count()).select_from(jobs_t).where(jobs_t.c.status == Status.QUEUED.value)
        return int((await conn.execute(q)).scalar() or 0)

    async def ahead_and_length(self, conn: AsyncConnection, job: Job) -> tuple[int, int]:
        """How many queued jobs are ahead of `job`, and how many are queued in all."""
        q = select(
            func.count().filter(_ahead_clause(job)),
            func.count(),
        ).where(jobs_t.c.status == Status.QUEUED.value)
        ahead, length = (await conn.execute(q)).one()
        return int(ahead or 0), int(length or 0)

    async def positions(self, conn: AsyncConnection, queued: Sequence[Job]) -> dict[str, int]:
        out: dict[str, int] = {}
        for job in queued:
            ahead, _ = await self.ahead_and_length(conn, job)
            out[job.job_id] = ahead + 1
        return out

    async def capacity(self, conn: AsyncConnection) -> eta.Capacity | None:
        """Live worker slots and their speed, or None when no worker is live."""
        cutoff = self.clock() - WORKER_LIVE_SECONDS
        row = (
            await conn.execute(
                select(
                    func.coalesce(func.sum(workers.c.concurrency), 0),
                    func.coalesce(func.avg(workers.c.speed), 1.0),
                ).where(workers.c.heartbeat_at >= cutoff)
            )
        ).one()
        slots = int(row[0] or 0)
        return eta.Capacity(slots=slots, speed=float(row[1] or 1.0)) if slots > 0 else None

    async def estimate_wait(self, conn: AsyncConnection, ahead: int) -> float | None:
        """Seconds until a slot starts a job with `ahead` queued jobs before it (None: no
        live worker)."""
        cap = await self.capacity(conn)
        if cap is None:
            return None
        model = await load_model(conn)
        running = await self.running_remaining(conn, model, cap.speed)
        return eta.wait_seconds(ahead, running, cap, model)

    async def running_remaining(
        self, conn: AsyncConnection, model: eta.Model, speed: float
    ) -> list[float]:
        """Expected seconds left for every job holding a slot now."""
        now = self.clock()
        rows = (
            await conn.execute(
                select(jobs_t.c.stage, jobs_t.c.stage_started_at).where(
                    jobs_t.c.status == Status.PROCESSING.value
                )
            )
        ).all()
        return [
            eta.remaining_seconds(model, r.stage, now - (r.stage_started_at or now), speed)
            for r in rows
        ]

    async def status_for(self, conn: AsyncConnection, user_id: str) -> dict[str, Any]:
        rows = (
            await conn.execute(
                select(jobs_t.c.job_id, jobs_t.c.submitted_at)
                .where(jobs_t.c.user_id == user_id, jobs_t.c.status == Status.QUEUED.value)
                .order_by(jobs_t.c.submitted_at, jobs_t.c.job_id)
            )
        ).all()
        length = await self.length(conn)
        now = self.clock()
        out = []
        for r in rows:
            job = Job(job_id=r.job_id, user_id=user_id, submitted_at=r.submitted_at)
            ahead, _ = await self.ahead_and_length(conn, job)
            wait = await self.estimate_wait(conn, ahead)
            out.append(
                {
                    "jobId": r.job_id,
                    "position": ahead + 1,
                    "estimatedWaitSeconds": wait,
                    "estimatedStart": iso(now + wait) if wait is not None else None,
                }
            )
        return {"queueLength": length, "jobs": out}
