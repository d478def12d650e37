"""The store's front door: what the service asks of jobs and streams, each in one transaction.

Writes go through the one write path (writes.commit): publishes and cancels batched by the
group committer, submits in a short transaction of their own. Reads of what a client is sent
(snapshot, replay, status-all) come from one consistent snapshot (hops.read). Callers get back
what was stored and hand it to fan-out (broadcast.Outbox) themselves.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, bindparam, delete, false, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from ..domain import messages as msg
from ..domain.compaction import compact
from ..domain.errors import DomainError, NotFound
from ..domain.job import ACTIVE, FINISHED, Job, Status
from ..domain.messages import Replay
from . import stream
from .estimates import Estimates
from .group_commit import GroupCommit
from .hops import Hops
from .queue import QueueView
from .rows import job_from_row
from .stream import Position, Stored
from .tables import jobs as jobs_t
from .tables import messages, stage_samples, streams
from .writes import Outcome, Write, commit, unchanged_since

Clock = Callable[[], float]
T = TypeVar("T")


# Built once (with bound parameters): it runs on every connect.
_VISIBLE = (
    select(jobs_t)
    .where(
        jobs_t.c.user_id == bindparam("user_id"),
        or_(
            *(jobs_t.c.status == s.value for s in ACTIVE),
            jobs_t.c.finished_at >= bindparam("cutoff"),
        ),
        jobs_t.c.hidden == false(),
    )
    .order_by(jobs_t.c.submitted_at, jobs_t.c.job_id)
)
# Stage samples kept in the table (the model reads the newest few hundred).
SAMPLES_KEPT = 5000


_OWNER = select(jobs_t.c.user_id).where(jobs_t.c.job_id == bindparam("job_id"))
_JOB = select(jobs_t).where(jobs_t.c.job_id == bindparam("job_id"))


class Ledger:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        history_size: int,
        history_ttl: int,
        clock: Clock = time.time,
    ) -> None:
        self.engine = engine
        self.history_size = history_size
        self.history_ttl = history_ttl
        self.clock = clock
        self.queue = QueueView(clock)
        self.hops = Hops(engine)
        self.estimates = Estimates()
        self.committer = GroupCommit(
            engine, history_size=history_size, clock=clock, estimates=self.estimates
        )

    async def close(self) -> None:
        """Release the committer's thread and every database connection."""
        await self.committer.close()
        await self.hops.close()
        await self.engine.dispose()

    # ---- publishing --------------------------------------------------------------------------

    def commit(self, conn: Connection, writes: Sequence[Write], now: float) -> list[Outcome]:
        """The one write path (writes.commit) in the caller's transaction, with this store's
        retention and estimates."""
        return commit(conn, writes, now, self.history_size, self.estimates)

    def commit_one(self, conn: Connection, write: Write, now: float) -> Stored:
        """`commit` of one write; raises its DomainError."""
        [outcome] = self.commit(conn, [write], now)
        if isinstance(outcome, DomainError):
            raise outcome
        return outcome

    async def owner(self, job_id: str) -> str:
        """The user a job belongs to; NotFound when there is no such job."""

        def read(conn: Connection) -> Any:
            return conn.execute(_OWNER, {"job_id": job_id}).scalar()

        owner = await self.hops.read(read)
        if owner is None:
            raise NotFound(f"job {job_id} does not exist", {"jobId": ["unknown job"]})
        return str(owner)

    async def store(self, write: Write) -> Stored:
        """Store one write in the next group commit."""
        return await self.committer.submit(write)

    async def publish(
        self, user_id: str | None, message: dict[str, Any], *, create: bool = False
    ) -> Stored:
        """Apply one validated message to its job and store it. With `user_id`, the job must
        belong to that user; with `create`, an unknown job is created for that user."""
        if user_id is None:
            user_id = await self.owner(message["jobId"])
        return await self.committer.submit(Write(user_id, message, create=create))

    async def submit(
        self,
        user_id: str,
        video_url: str,
        title: str | None = None,
        *,
        pipeline: str | None = None,
    ) -> tuple[Job, Stored]:
        """Queue a new job and store its first queue_update. `pipeline` names who may claim
        it (domain.job.DEMO: the demo worker; None: the team's own pipeline)."""
        job_id = uuid.uuid4().hex

        def tx(conn: Connection) -> tuple[Job, Stored]:
            now = self.clock()
            job = Job(
                job_id=job_id,
                user_id=user_id,
                video_url=video_url,
                title=title,
                submitted_at=now,
                pipeline=pipeline,
            )
            # A write first: on SQLite the transaction holds the write lock before the queue
            # is read, so the position it computes is still true when it commits.
            stream.ensure(conn, [user_id], now)
            ahead, length = self.queue.ahead_and_length(conn, job)
            wait = self.queue.estimate_wait(conn, ahead)
            update = msg.queue_update(job_id, ahead + 1, length + 1, wait, now)
            return job, self.commit_one(conn, Write(user_id, update, new=job), now)

        return await self.hops.write(tx)

    async def cancel(self, user_id: str | None, job_id: str, *, by: str | None = None) -> Stored:
        """End a queued, retrying or running job with processing_error `cancelled`; `by` is
        the user who cancelled it (None: a backend)."""
        return await self.publish(user_id, msg.cancelled(job_id, by))

    async def clear_finished(self, user_id: str) -> int:
        """Hide the user's finished jobs from their list on every device; how many."""

        def tx(conn: Connection) -> int:
            result = conn.execute(
                update(jobs_t)
                .where(
                    jobs_t.c.user_id == user_id,
                    jobs_t.c.status.in_([s.value for s in FINISHED]),
                    jobs_t.c.hidden == false(),
                )
                .values(hidden=True)
            )
            return int(result.rowcount or 0)

        return await self.hops.write(tx)

    async def heartbeat(self, job_id: str) -> bool:
        """Keep a processing or retrying job from counting as stalled, without a message;
        False when there is no such active job."""

        def tx(conn: Connection) -> bool:
            result = conn.execute(
                update(jobs_t)
                .where(
                    jobs_t.c.job_id == job_id,
                    jobs_t.c.status.in_([Status.PROCESSING.value, Status.RETRYING.value]),
                )
                .values(heartbeat_at=self.clock())
            )
            return bool(result.rowcount)

        return await self.hops.write(tx)

    async def end_stalled(self, silent_for: float, limit: int = 100) -> list[Stored]:
        """End every processing or retrying job that got no message, heartbeat or due retry
        for `silent_for` seconds with processing_error `stalled` (no retry): a job whose
        reporter died never stays "processing" forever."""

        def tx(conn: Connection) -> list[Stored]:
            now = self.clock()
            cutoff = now - silent_for
            silent = (
                jobs_t.c.status.in_([Status.PROCESSING.value, Status.RETRYING.value]),
                func.coalesce(jobs_t.c.updated_at, jobs_t.c.submitted_at) < cutoff,
                or_(jobs_t.c.heartbeat_at.is_(None), jobs_t.c.heartbeat_at < cutoff),
                or_(jobs_t.c.retry_at.is_(None), jobs_t.c.retry_at < cutoff),
            )
            rows = conn.execute(
                select(jobs_t.c.job_id, jobs_t.c.user_id, jobs_t.c.updated_seq)
                .where(*silent)
                .limit(limit)
            ).all()
            minutes = round(silent_for / 60)
            text = f"No progress was reported for {minutes} minutes; the job was stopped"
            writes = [
                Write(
                    r.user_id,
                    msg.processing_error(r.job_id, text, code="stalled", will_retry=False),
                    guard=unchanged_since(int(r.updated_seq)),
                )
                for r in rows
            ]
            return [o for o in self.commit(conn, writes, now) if isinstance(o, Stored)]

        return await self.hops.write(tx)

    # ---- reading -----------------------------------------------------------------------------

    async def job(self, job_id: str) -> tuple[Job, int | None] | None:
        """A job and its queue position (None unless queued)."""

        def read(conn: Connection) -> tuple[Job, int | None] | None:
            row = conn.execute(_JOB, {"job_id": job_id}).first()
            if row is None:
                return None
            job = job_from_row(row)
            if job.status != Status.QUEUED:
                return job, None
            ahead, _ = self.queue.ahead_and_length(conn, job)
            return job, ahead + 1

        return await self.hops.read(read)

    def _visible_jobs(self, conn: Connection, user_id: str) -> list[Job]:
        """The user's active jobs and those finished within the history TTL, oldest first."""
        params = {"user_id": user_id, "cutoff": self.clock() - self.history_ttl}
        return [job_from_row(r) for r in conn.execute(_VISIBLE, params)]

    def _snapshot(self, conn: Connection, user_id: str, pos: Position) -> dict[str, Any]:
        """Job states as of `pos` (the stream position read in this transaction)."""
        jobs = self._visible_jobs(conn, user_id)
        positions = self.queue.positions(conn, [j for j in jobs if j.status == Status.QUEUED])
        states = [j.state(positions.get(j.job_id)) for j in jobs]
        return msg.snapshot(states, pos.last_seq, pos.epoch, self.clock())

    async def _read(self, user_id: str, plan: Callable[[Connection, Position], T]) -> T:
        """`plan(conn, position)` over one consistent snapshot of the store. A stream that
        does not exist yet is created first (once per user)."""

        def run(conn: Connection) -> T | None:
            pos = stream.position(conn, user_id)
            return plan(conn, pos) if pos else None

        got = await self.hops.read(run)
        if got is None:
            await self.hops.write(stream.ensure, [user_id], self.clock())
            got = await self.hops.read(run)
        assert got is not None  # the stream exists now
        return got

    async def snapshot(self, user_id: str) -> dict[str, Any]:
        return await self._read(user_id, lambda conn, pos: self._snapshot(conn, user_id, pos))

    async def replay(self, user_id: str, last_seq: int | None, epoch: str | None) -> Replay:
        """Plan what a connection gets, per the contract's delivery rules.

        With a usable `last_seq` + `epoch`: the stored messages after it, compacted. Without
        `last_seq`: a snapshot, then the un-acked messages (the offline queue). When `last_seq`
        cannot be honoured: a snapshot and `recovered: false`.
        """
        return await self._read(
            user_id, lambda conn, pos: self._plan_replay(conn, user_id, pos, last_seq, epoch)
        )

    def _plan_replay(
        self,
        conn: Connection,
        user_id: str,
        pos: Position,
        last_seq: int | None,
        epoch: str | None,
    ) -> Replay:
        now = self.clock()
        if last_seq is not None:
            honourable = epoch == pos.epoch and 0 <= last_seq <= pos.last_seq
            read = stream.read_after(conn, user_id, last_seq, pos.last_seq) if honourable else None
            if read is not None and read.complete:
                kept, omitted = compact(read.messages)
                return Replay(None, kept, last_seq + 1, pos.last_seq, pos.epoch, True, omitted, now)
            snap = self._snapshot(conn, user_id, pos)
            return Replay(snap, [], pos.last_seq + 1, pos.last_seq, pos.epoch, False, 0, now)
        snap = self._snapshot(conn, user_id, pos)
        read = stream.read_after(conn, user_id, pos.acked_seq, pos.last_seq)
        kept, omitted = compact(read.messages)
        first = read.messages[0]["seq"] if read.messages else pos.last_seq + 1
        from_seq = pos.acked_seq + 1 if read.complete else first
        return Replay(snap, kept, from_seq, pos.last_seq, pos.epoch, read.complete, omitted, now)

    async def read_after(self, user_id: str, after: int, upto: int) -> stream.Read:
        return await self.hops.read(stream.read_after, user_id, after, upto)

    async def positions(self, user_ids: list[str]) -> dict[str, Position]:
        """Stream positions of several users at once (for the follower)."""
        out: dict[str, Position] = {}
        async with self.engine.connect() as conn:
            for i in range(0, len(user_ids), 500):
                chunk = user_ids[i : i + 500]
                rows = await conn.execute(
                    select(
                        streams.c.user_id, streams.c.epoch, streams.c.last_seq, streams.c.acked_seq
                    ).where(streams.c.user_id.in_(chunk))
                )
                for r in rows:
                    out[r.user_id] = Position(r.epoch, r.last_seq, r.acked_seq)
        return out

    async def ack(self, user_id: str, seq: int) -> None:
        # One short hop: every tab acks, and SQLite has one write lock (see hops.py).
        await self.hops.write(stream.ack, user_id, seq)

    async def status_all(
        self, user_id: str, since: int | None, epoch: str | None
    ) -> dict[str, Any]:
        """The HTTP polling fallback's answer."""

        def plan(conn: Connection, pos: Position) -> dict[str, Any]:
            if since is not None and epoch == pos.epoch and 0 <= since <= pos.last_seq:
                read = stream.read_after(conn, user_id, since, pos.last_seq)
                if read.complete:
                    kept, omitted = compact(read.messages)
                    return msg.status_all(kept, pos.last_seq, pos.epoch, omitted, True)
            latest = [j.last_message for j in self._visible_jobs(conn, user_id)]
            latest_sorted = sorted((m for m in latest if m), key=lambda m: int(m.get("seq", 0)))
            return msg.status_all(latest_sorted, pos.last_seq, pos.epoch, 0, since is None)

        return await self._read(user_id, plan)

    async def queue_status(self, user_id: str) -> dict[str, Any]:
        return await self.hops.read(self.queue.status_for, user_id)

    async def trim_expired(self) -> int:
        """Retention: messages past the history TTL, and stage samples beyond what the
        estimates read."""

        def tx(conn: Connection) -> int:
            top = conn.execute(select(func.max(stage_samples.c.id))).scalar()
            if top is not None and top > SAMPLES_KEPT:
                conn.execute(delete(stage_samples).where(stage_samples.c.id <= top - SAMPLES_KEPT))
            return stream.trim_expired(conn, self.clock() - self.history_ttl)

        return await self.hops.write(tx)

    async def count_messages(self, user_id: str) -> int:
        async with self.engine.connect() as conn:
            n = await conn.execute(
                select(func.count()).select_from(messages).where(messages.c.user_id == user_id)
            )
            return int(n.scalar() or 0)
