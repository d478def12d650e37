"""Workers' side of the queue: claiming, guarded publishing, heartbeats, the stalled-job sweep.

Guarantees (SQLite and PostgreSQL alike):
- A claim is atomic: the job leaves the queue and its first `progress_update` (which starts
  the attempt and names the worker) commit together, so two workers never hold one job.
  PostgreSQL: `SELECT ... FOR UPDATE SKIP LOCKED`; SQLite: the claim is one write
  transaction (BEGIN IMMEDIATE, see hops.py), so it holds the write lock before it reads.
- A due retry is claimed before any queued job; queued jobs in FIFO order.
- A worker publishes for a job only while it holds it: status `processing`, its worker id,
  the attempt it claimed. Otherwise (cancelled, failed by the sweep, taken over by another
  worker) the publish raises `Lost` and nothing is stored.
- A job whose worker stopped heart-beating is failed with `worker_lost` (will retry), so it
  is retried or, at max attempts, failed: a stalled job never hangs forever.

On PostgreSQL claims hold the queue's advisory lock in shared mode and the QueueNotifier's
short write transactions hold it exclusively: a claim never skips the head of the queue just
because the notifier is writing that job's queue_update at the same moment.

Every message goes through the one write path (writes.commit); nothing here sends: callers
hand what was stored to their Outbox.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, delete, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from ..domain import messages as msg
from ..domain.errors import Conflict
from ..domain.job import Job, Status, retry_delay
from ..domain.schemas import validated
from .ledger import Ledger
from .queue import WORKER_LIVE_SECONDS
from .rows import job_from_row
from .stream import Stored
from .tables import jobs as jobs_t
from .tables import workers
from .writes import Write

log = logging.getLogger(__name__)

# Any constant works; it only has to be the same in every process.
QUEUE_LOCK_KEY = 7_303_012
# Seconds without a heartbeat before a claimed job counts as stalled.
STALL_SECONDS = 15.0
# Rows of stalled workers are removed after this long without a heartbeat.
WORKER_FORGET_SECONDS = 4 * WORKER_LIVE_SECONDS

StartMessage = Callable[[Job, float], dict[str, Any]]


class Lost(Conflict):
    """This worker no longer holds the job: cancelled, failed by the sweep, or taken over."""


class _Moved(Conflict):
    """The job moved on between the sweep's read and its write: not stalled after all."""


def queue_lock(conn: Connection, *, exclusive: bool) -> None:
    """Take the queue's advisory lock until the end of the transaction (PostgreSQL only;
    SQLite's write transactions are serial anyway)."""
    if conn.dialect.name != "postgresql":
        return
    fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    conn.execute(text(f"SELECT {fn}(:k)"), {"k": QUEUE_LOCK_KEY})


def _upsert(
    conn: Connection, table: Any, values: dict[str, Any], update_cols: Sequence[str]
) -> Any:
    dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(**values)
    key = [c.name for c in table.primary_key.columns]
    return stmt.on_conflict_do_update(
        index_elements=key, set_={c: stmt.excluded[c] for c in update_cols}
    )


def _next_queries(now: float, pipeline: str | None) -> list[Any]:
    mine = jobs_t.c.pipeline.is_(None) if pipeline is None else jobs_t.c.pipeline == pipeline
    due = (
        select(jobs_t)
        .where(jobs_t.c.status == Status.RETRYING.value, jobs_t.c.retry_at <= now, mine)
        .order_by(jobs_t.c.retry_at, jobs_t.c.job_id)
        .limit(1)
    )
    queued = (
        select(jobs_t)
        .where(jobs_t.c.status == Status.QUEUED.value, mine)
        .order_by(jobs_t.c.submitted_at, jobs_t.c.job_id)
        .limit(1)
    )
    return [due, queued]


def _next(conn: Connection, now: float, pipeline: str | None, *, lock: bool) -> Job | None:
    for q in _next_queries(now, pipeline):
        if lock and conn.dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        row = conn.execute(q).first()
        if row is not None:
            return job_from_row(row)
    return None


def held_by(worker_id: str, attempt: int) -> Callable[[Job], None]:
    """A guard: the job is still this worker's, in the attempt it claimed."""

    def guard(job: Job) -> None:
        if job.status != Status.PROCESSING or job.worker_id != worker_id or job.attempt != attempt:
            raise Lost(f"job {job.job_id} is no longer held by {worker_id} ({job.status.value})")

    return guard


def _heartbeat(job: Job, now: float) -> None:
    job.heartbeat_at = now


class Claims:
    """Claims and worker bookkeeping over the Ledger's tables."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    @property
    def clock(self) -> Callable[[], float]:
        return self.ledger.clock

    # ---- workers --------------------------------------------------------------------------

    async def heartbeat(self, worker_id: str, *, concurrency: int, speed: float) -> None:
        """Register or refresh the worker (its slots and speed feed the estimates) and the
        heartbeat of every job it holds."""

        def tx(conn: Connection) -> None:
            now = self.clock()
            values = {
                "worker_id": worker_id,
                "concurrency": concurrency,
                "speed": speed,
                "started_at": now,
                "heartbeat_at": now,
            }
            conn.execute(_upsert(conn, workers, values, ("concurrency", "speed", "heartbeat_at")))
            conn.execute(
                update(jobs_t)
                .where(jobs_t.c.worker_id == worker_id, jobs_t.c.status == Status.PROCESSING.value)
                .values(heartbeat_at=now)
            )

        await self.ledger.hops.write(tx)

    async def unregister(self, worker_id: str) -> None:
        def tx(conn: Connection) -> None:
            conn.execute(delete(workers).where(workers.c.worker_id == worker_id))

        await self.ledger.hops.write(tx)

    # ---- claiming -------------------------------------------------------------------------

    async def claim(
        self,
        worker_id: str,
        start: StartMessage,
        *,
        pipeline: str | None = None,
        speed: float = 1.0,
    ) -> tuple[Job, Stored] | None:
        """Take the next job of `pipeline` (a due retry first, else the head of the queue) and
        store its first progress_update, built by `start(job, now)`; None when there is
        nothing to do. Jobs of another pipeline are never taken: the demo worker
        (`pipeline="demo"`) never touches a real pipeline's job."""
        # A cheap read first: an idle worker polling must not take SQLite's write lock.
        now = self.clock()
        if await self.ledger.hops.read(lambda c: _next(c, now, pipeline, lock=False)) is None:
            return None

        def tx(conn: Connection) -> tuple[Job, Stored] | None:
            now = self.clock()
            queue_lock(conn, exclusive=False)
            job = _next(conn, now, pipeline, lock=True)
            if job is None:
                return None
            claimed: list[Job] = []

            def take(j: Job, at: float) -> None:
                j.worker_id = worker_id
                j.heartbeat_at = at
                j.speed = speed
                claimed.append(j)

            write = Write(job.user_id, validated(start(job, now)), touch=take)
            stored = self.ledger.commit_one(conn, write, now)
            return claimed[0], stored

        return await self.ledger.hops.write(tx)

    # ---- publishing while holding a job ---------------------------------------------------

    async def publish(self, worker_id: str, held: Job, message: dict[str, Any]) -> Stored:
        """Store `message` for a job this worker holds (same attempt); raises Lost, and
        stores nothing, when it no longer does."""
        write = Write(
            held.user_id,
            validated(message),
            guard=held_by(worker_id, held.attempt),
            touch=_heartbeat,
        )
        return await self.ledger.store(write)

    async def still_held(self, worker_id: str, held: Sequence[Job]) -> set[str]:
        """Which of `held` this worker still holds (one query)."""
        if not held:
            return set()
        attempts = {j.job_id: j.attempt for j in held}

        def read(conn: Connection) -> set[str]:
            rows = conn.execute(
                select(jobs_t.c.job_id, jobs_t.c.attempt).where(
                    jobs_t.c.job_id.in_(list(attempts)),
                    jobs_t.c.status == Status.PROCESSING.value,
                    jobs_t.c.worker_id == worker_id,
                )
            )
            return {r.job_id for r in rows if attempts.get(r.job_id) == r.attempt}

        return await self.ledger.hops.read(read)

    # ---- the stalled-job sweep ------------------------------------------------------------

    async def sweep(
        self, *, stall_after: float = STALL_SECONDS, speed: float = 1.0, limit: int = 100
    ) -> list[Stored]:
        """Fail (with `worker_lost`, will retry) every claimed job whose heartbeat is older
        than `stall_after`; retries back off by jobs.retry_delay(attempt, speed). Jobs a
        backend publishes for without claiming (no worker id) are never swept."""
        cutoff = self.clock() - stall_after

        def read(conn: Connection) -> list[Any]:
            q = select(jobs_t.c.job_id, jobs_t.c.user_id, jobs_t.c.attempt, jobs_t.c.worker_id)
            stale = q.where(
                jobs_t.c.status == Status.PROCESSING.value,
                jobs_t.c.worker_id.is_not(None),
                jobs_t.c.heartbeat_at < cutoff,
            )
            return list(conn.execute(stale.limit(limit)).all())

        def still_stale(attempt: int) -> Callable[[Job], None]:
            def guard(job: Job) -> None:
                if (
                    job.status != Status.PROCESSING
                    or job.worker_id is None
                    or job.heartbeat_at is None
                    or job.heartbeat_at >= cutoff
                    or job.attempt != attempt
                ):
                    raise _Moved(f"job {job.job_id} moved on")

            return guard

        def tx(conn: Connection, rows: list[Any]) -> list[Stored]:
            now = self.clock()
            writes = [
                Write(
                    r.user_id,
                    msg.processing_error(
                        r.job_id,
                        "The worker processing this job stopped responding",
                        code="worker_lost",
                        will_retry=True,
                        retry_at=now + retry_delay(r.attempt, speed),
                    ),
                    guard=still_stale(r.attempt),
                )
                for r in rows
            ]
            out = []
            if writes:
                for r, o in zip(rows, self.ledger.commit(conn, writes, now), strict=True):
                    if isinstance(o, Stored):
                        out.append(o)
                        log.warning("job %s: worker %s lost", r.job_id, r.worker_id)
            conn.execute(
                delete(workers).where(workers.c.heartbeat_at < now - WORKER_FORGET_SECONDS)
            )
            return out

        rows = await self.ledger.hops.read(read)
        return await self.ledger.hops.write(tx, rows)
