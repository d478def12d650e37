"""The worker side of the queue: claiming, guarded publishing, heartbeats, the stalled-job sweep.

Guarantees (SQLite and PostgreSQL alike):
- A claim is atomic: the job leaves the queue and its first `progress_update` (which starts
  the attempt and names the worker) commit together, so two workers never hold one job.
  PostgreSQL: `SELECT ... FOR UPDATE SKIP LOCKED`; SQLite: the claim's first statement is a
  write (the worker's heartbeat), so the transaction holds the database write lock before it
  reads the queue.
- A due retry is claimed before any queued job; queued jobs in FIFO order.
- A worker publishes for a job only while it holds it: status `processing`, its worker id,
  the attempt it claimed. Otherwise (cancelled, failed by the sweep, taken over by another
  worker) the publish raises `Lost` and nothing is stored.
- A job whose worker stopped heart-beating is failed with `worker_lost` (will retry), so it
  is retried or, at max attempts, failed: a stalled job never hangs forever.

On PostgreSQL claims hold the queue's advisory lock in shared mode and the QueueNotifier's
short write transactions hold it exclusively: a claim never skips the head of the queue just
because the notifier is writing that job's queue_update at the same moment.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from . import stream
from .broadcast import Broadcast
from .db import jobs as jobs_t
from .db import stage_samples, workers
from .jobs import Conflict, Job, Status, apply, iso, retry_delay
from .ledger import Ledger, job_from_row
from .queue import WORKER_LIVE_SECONDS
from .stream import Stored
from .tracker import validated

log = logging.getLogger(__name__)

# Any constant works; it only has to be the same in every process.
QUEUE_LOCK_KEY = 7_303_012
# Seconds without a heartbeat before a claimed job counts as stalled.
STALL_SECONDS = 15.0
# Stage samples kept in the table (the model reads the newest WINDOW per stage).
SAMPLES_KEPT = 5000
# Rows of stalled workers are removed after this long without a heartbeat.
WORKER_FORGET_SECONDS = 4 * WORKER_LIVE_SECONDS

StartMessage = Callable[[Job, float], dict[str, Any]]


class Lost(Conflict):
    """This worker no longer holds the job: cancelled, failed by the sweep, or taken over."""


async def queue_lock(conn: AsyncConnection, *, exclusive: bool) -> None:
    """Take the queue's advisory lock until the end of the transaction (PostgreSQL only;
    SQLite's write transactions are serial anyway)."""
    if conn.dialect.name != "postgresql":
        return
    fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    await conn.execute(text(f"SELECT {fn}(:k)"), {"k": QUEUE_LOCK_KEY})


def _upsert(
    conn: AsyncConnection, table: Any, values: dict[str, Any], update_cols: Sequence[str]
) -> Any:
    dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(**values)
    key = [c.name for c in table.primary_key.columns]
    return stmt.on_conflict_do_update(
        index_elements=key, set_={c: stmt.excluded[c] for c in update_cols}
    )


class Pipeline:
    """Claims and worker bookkeeping over the Ledger's tables, fanning out what it stores."""

    def __init__(self, ledger: Ledger, broadcast: Broadcast) -> None:
        self.ledger = ledger
        self.broadcast = broadcast

    @property
    def clock(self) -> Callable[[], float]:
        return self.ledger.clock

    # ---- workers --------------------------------------------------------------------------

    async def heartbeat(self, worker_id: str, *, concurrency: int, speed: float) -> None:
        """Register or refresh the worker (its slots and speed feed the estimates) and the
        heartbeat of every job it holds."""
        now = self.clock()
        async with self.ledger.engine.begin() as conn:
            values = {
                "worker_id": worker_id,
                "concurrency": concurrency,
                "speed": speed,
                "started_at": now,
                "heartbeat_at": now,
            }
            await conn.execute(
                _upsert(conn, workers, values, ("concurrency", "speed", "heartbeat_at"))
            )
            await conn.execute(
                update(jobs_t)
                .where(jobs_t.c.worker_id == worker_id, jobs_t.c.status == Status.PROCESSING.value)
                .values(heartbeat_at=now)
            )

    async def unregister(self, worker_id: str) -> None:
        async with self.ledger.engine.begin() as conn:
            await conn.execute(delete(workers).where(workers.c.worker_id == worker_id))

    # ---- claiming -------------------------------------------------------------------------

    @staticmethod
    def _next_queries(now: float) -> list[Any]:
        due = (
            select(jobs_t)
            .where(jobs_t.c.status == Status.RETRYING.value, jobs_t.c.retry_at <= now)
            .order_by(jobs_t.c.retry_at, jobs_t.c.job_id)
            .limit(1)
        )
        queued = (
            select(jobs_t)
            .where(jobs_t.c.status == Status.QUEUED.value)
            .order_by(jobs_t.c.submitted_at, jobs_t.c.job_id)
            .limit(1)
        )
        return [due, queued]

    async def _next(self, conn: AsyncConnection, now: float, *, lock: bool) -> Job | None:
        for q in self._next_queries(now):
            if lock and conn.dialect.name == "postgresql":
                q = q.with_for_update(skip_locked=True)
            row = (await conn.execute(q)).first()
            if row is not None:
                return job_from_row(row)
        return None

    async def claim(self, worker_id: str, start: StartMessage) -> Job | None:
        """Take the next job (a due retry first, else the head of the queue) and store its
        first progress_update, built by `start(job, now)`; None when there is nothing to do."""
        now = self.clock()
        # A cheap read first: an idle worker polling must not take SQLite's write lock.
        async with self.ledger.engine.connect() as conn:
            if await self._next(conn, now, lock=False) is None:
                return None
        async with self.ledger.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                await queue_lock(conn, exclusive=False)
            else:
                # The first statement is a write: SQLite's write lock is ours before the read.
                await conn.execute(
                    update(workers).where(workers.c.worker_id == worker_id).values(heartbeat_at=now)
                )
            job = await self._next(conn, now, lock=True)
            if job is None:
                return None
            await stream.ensure(conn, job.user_id, now)
            job, payload = apply(job, validated(start(job, now)), now)
            job.worker_id = worker_id
            job.heartbeat_at = now
            stored = await self.ledger._store(conn, job, payload)
        await self.broadcast.send([stored])
        return job

    # ---- publishing while holding a job ---------------------------------------------------

    async def publish(self, worker_id: str, held: Job, message: dict[str, Any]) -> Stored:
        """Store and fan out `message` for a job this worker holds (same attempt); raises
        Lost, and stores nothing, when it no longer does."""
        msg = validated(message)
        async with self.ledger.writing(held.user_id) as conn:
            now = self.clock()
            job = await self.ledger._load_job(conn, held.job_id)
            if (
                job is None
                or job.status != Status.PROCESSING
                or job.worker_id != worker_id
                or job.attempt != held.attempt
            ):
                state = "gone" if job is None else job.status.value
                raise Lost(f"job {held.job_id} is no longer held by {worker_id} ({state})")
            job, payload = apply(job, msg, now)
            job.heartbeat_at = now
            stored = await self.ledger._store(conn, job, payload)
        await self.broadcast.send([stored])
        return stored

    async def still_held(self, worker_id: str, held: Sequence[Job]) -> set[str]:
        """Which of `held` this worker still holds (one query)."""
        if not held:
            return set()
        attempts = {j.job_id: j.attempt for j in held}
        async with self.ledger.engine.connect() as conn:
            rows = await conn.execute(
                select(jobs_t.c.job_id, jobs_t.c.attempt).where(
                    jobs_t.c.job_id.in_(list(attempts)),
                    jobs_t.c.status == Status.PROCESSING.value,
                    jobs_t.c.worker_id == worker_id,
                )
            )
            return {r.job_id for r in rows if attempts.get(r.job_id) == r.attempt}

    # ---- the stalled-job sweep ------------------------------------------------------------

    async def sweep(
        self, *, stall_after: float = STALL_SECONDS, speed: float = 1.0, limit: int = 100
    ) -> list[Stored]:
        """Fail (with `worker_lost`, will retry) every claimed job whose heartbeat is older
        than `stall_after`; retries back off by jobs.retry_delay(attempt, speed). Jobs a
        backend publishes for without claiming (no worker id) are never swept."""
        now = self.clock()
        cutoff = now - stall_after
        stale = (
            jobs_t.c.status == Status.PROCESSING.value,
            jobs_t.c.worker_id.is_not(None),
            jobs_t.c.heartbeat_at < cutoff,
        )
        async with self.ledger.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(jobs_t.c.job_id, jobs_t.c.user_id).where(*stale).limit(limit)
                )
            ).all()
        out: list[Stored] = []
        for r in rows:
            async with self.ledger.writing(r.user_id) as conn:
                job = await self.ledger._load_job(conn, r.job_id)
                if (
                    job is None
                    or job.status != Status.PROCESSING
                    or job.worker_id is None
                    or job.heartbeat_at is None
                    or job.heartbeat_at >= cutoff
                ):
                    continue  # it moved on meanwhile
                now = self.clock()
                message = {
                    "type": "processing_error",
                    "jobId": job.job_id,
                    "error": "The worker processing this job stopped responding",
                    "code": "worker_lost",
                    "willRetry": True,
                    "retryAt": iso(now + retry_delay(job.attempt, speed)),
                }
                lost_worker = job.worker_id
                job, payload = apply(job, validated(message), now)
                out.append(await self.ledger._store(conn, job, payload))
                log.warning("job %s: worker %s lost; %s", job.job_id, lost_worker, job.status.value)
        if out:
            await self.broadcast.send(out)
        async with self.ledger.engine.begin() as conn:
            await conn.execute(
                delete(workers).where(workers.c.heartbeat_at < now - WORKER_FORGET_SECONDS)
            )
        return out

    # ---- stage samples --------------------------------------------------------------------

    async def record_samples(self, samples: Sequence[tuple[str, float]]) -> None:
        """Store measured stage lengths (already normalised to speed 1)."""
        if not samples:
            return
        now = self.clock()
        async with self.ledger.engine.begin() as conn:
            await conn.execute(
                insert(stage_samples),
                [{"stage": s, "seconds": sec, "recorded_at": now} for s, sec in samples],
            )

    async def trim_samples(self, keep: int = SAMPLES_KEPT) -> None:
        async with self.ledger.engine.begin() as conn:
            top = (await conn.execute(select(func.max(stage_samples.c.id)))).scalar()
            if top is not None and top > keep:
                await conn.execute(delete(stage_samples).where(stage_samples.c.id <= top - keep))
