"""Transactions over jobs and streams: every state change and its message commit together.

This is the one place that writes jobs and messages. Callers (the Tracker, the HTTP API, the
CLI, the gateway) get back what was stored and hand it to fan-out themselves.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, Row, bindparam, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from . import codec, stream
from .db import jobs as jobs_t
from .db import messages, streams
from .group_commit import GroupCommit
from .jobs import ACTIVE, Job, NotFound, Status, iso
from .queue import QueueView
from .reader import Reader
from .stream import Position, Stored

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
    )
    .order_by(jobs_t.c.submitted_at, jobs_t.c.job_id)
)


@dataclass(frozen=True)
class Replay:
    """What a (re)connecting client gets: maybe a snapshot, then messages, then the summary."""

    snapshot: dict[str, Any] | None
    messages: list[dict[str, Any]]
    complete: dict[str, Any]  # the replay_complete payload


def job_from_row(row: Row[Any]) -> Job:
    m = row._mapping
    return Job(
        job_id=m["job_id"],
        user_id=m["user_id"],
        status=Status(m["status"]),
        video_url=m["video_url"],
        title=m["title"],
        stage=m["stage"],
        progress=m["progress"],
        attempt=m["attempt"],
        max_attempts=m["max_attempts"],
        error=m["error"],
        error_code=m["error_code"],
        submitted_at=m["submitted_at"],
        started_at=m["started_at"],
        stage_started_at=m["stage_started_at"],
        finished_at=m["finished_at"],
        retry_at=m["retry_at"],
        estimated_completion=m["estimated_completion"],
        worker_id=m["worker_id"],
        heartbeat_at=m["heartbeat_at"],
        result=codec.loads(m["result"]) if m["result"] else None,
        last_message=codec.loads(m["last_message"]) if m["last_message"] else None,
        updated_seq=m["updated_seq"],
    )


def job_values(job: Job) -> dict[str, Any]:
    return {
        "job_id": job.job_id,
        "user_id": job.user_id,
        "status": job.status.value,
        "video_url": job.video_url,
        "title": job.title,
        "stage": job.stage,
        "progress": job.progress,
        "attempt": job.attempt,
        "max_attempts": job.max_attempts,
        "error": job.error,
        "error_code": job.error_code,
        "submitted_at": job.submitted_at,
        "started_at": job.started_at,
        "stage_started_at": job.stage_started_at,
        "finished_at": job.finished_at,
        "retry_at": job.retry_at,
        "estimated_completion": job.estimated_completion,
        "worker_id": job.worker_id,
        "heartbeat_at": job.heartbeat_at,
        "result": stream.dumps(job.result) if job.result is not None else None,
        "last_message": stream.dumps(job.last_message) if job.last_message is not None else None,
        "updated_seq": job.updated_seq,
    }


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
        self.reader = Reader(engine)
        self.committer = GroupCommit(
            engine,
            history_size=history_size,
            clock=clock,
            to_row=job_values,
            from_row=job_from_row,
        )

    async def close(self) -> None:
        """Release the committer's thread and every database connection."""
        await self.committer.close()
        await self.reader.close()
        await self.engine.dispose()

    # ---- transactions ----------------------------------------------------------------------

    @asynccontextmanager
    async def writing(self, user_id: str) -> AsyncIterator[AsyncConnection]:
        """A transaction whose first statement is a write on the user's stream row (SQLite
        then holds the write lock before any read; see stream.ensure)."""
        async with self.engine.begin() as conn:
            await stream.ensure(conn, user_id, self.clock())
            yield conn

    async def _load_job(self, conn: AsyncConnection, job_id: str) -> Job | None:
        q = select(jobs_t).where(jobs_t.c.job_id == job_id)
        if conn.dialect.name == "postgresql":
            q = q.with_for_update()
        row = (await conn.execute(q)).first()
        return job_from_row(row) if row else None

    async def _store(
        self, conn: AsyncConnection, job: Job, payload: dict[str, Any], *, new: bool = False
    ) -> Stored:
        now = self.clock()
        [stored] = await stream.append(conn, job.user_id, [payload], now, self.history_size)
        job.last_message = stored.payload
        job.updated_seq = stored.seq
        values = job_values(job)
        if new:
            await conn.execute(insert(jobs_t).values(**values))
        else:
            await conn.execute(update(jobs_t).where(jobs_t.c.job_id == job.job_id).values(**values))
        return stored

    # ---- publishing --------------------------------------------------------------------------

    async def publish(
        self, user_id: str | None, message: dict[str, Any], *, create: bool = False
    ) -> Stored:
        """Apply one validated message to its job and store it. With `user_id`, the job must
        belong to that user; with `create`, an unknown job is created for that user."""
        job_id = message["jobId"]
        if user_id is None:
            # Resolved before the write transaction: on SQLite that must begin with a write.
            async with self.engine.connect() as conn:
                owner = (
                    await conn.execute(select(jobs_t.c.user_id).where(jobs_t.c.job_id == job_id))
                ).scalar()
            if owner is None:
                raise NotFound(f"job {job_id} does not exist", {"jobId": ["unknown job"]})
            user_id = str(owner)
        return await self.committer.publish(user_id, message, create=create)

    async def submit(
        self, user_id: str, video_url: str, title: str | None = None
    ) -> tuple[Job, Stored]:
        """Queue a new job and store its first queue_update."""
        now = self.clock()
        job = Job(
            job_id=uuid.uuid4().hex,
            user_id=user_id,
            video_url=video_url,
            title=title,
            submitted_at=now,
        )
        async with self.writing(user_id) as conn:
            ahead, length = await self.queue.ahead_and_length(conn, job)
            wait = await self.queue.estimate_wait(conn, ahead)
            payload = {
                "type": "queue_update",
                "jobId": job.job_id,
                "position": ahead + 1,
                "queueLength": length + 1,
                "estimatedWaitSeconds": wait,
                "estimatedStart": iso(now + wait) if wait is not None else None,
            }
            job.last_message = payload
            stored = await self._store(conn, job, payload, new=True)
        return job, stored

    async def cancel(self, user_id: str | None, job_id: str) -> Stored:
        """End a queued, retrying or running job with processing_error `cancelled`."""
        message = {
            "type": "processing_error",
            "jobId": job_id,
            "error": "cancelled",
            "code": "cancelled",
            "willRetry": False,
        }
        return await self.publish(user_id, message)

    # ---- reading -----------------------------------------------------------------------------

    async def job(self, job_id: str) -> tuple[Job, int | None] | None:
        """A job and its queue position (None unless queued)."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(jobs_t).where(jobs_t.c.job_id == job_id))).first()
            if row is None:
                return None
            job = job_from_row(row)
            pos = None
            if job.status == Status.QUEUED:
                ahead, _ = await self.queue.ahead_and_length(conn, job)
                pos = ahead + 1
        return job, pos

    def _visible_jobs(self, conn: Connection, user_id: str) -> list[Job]:
        """The user's active jobs and those finished within the history TTL, oldest first."""
        params = {"user_id": user_id, "cutoff": self.clock() - self.history_ttl}
        return [job_from_row(r) for r in conn.execute(_VISIBLE, params)]

    def _snapshot(self, conn: Connection, user_id: str, pos: Position) -> dict[str, Any]:
        """Job states as of `pos` (the stream position read in this transaction)."""
        jobs = self._visible_jobs(conn, user_id)
        positions = self.queue.positions(conn, [j for j in jobs if j.status == Status.QUEUED])
        return {
            "type": "snapshot",
            "jobs": [j.state(positions.get(j.job_id)) for j in jobs],
            "lastSeq": pos.last_seq,
            "epoch": pos.epoch,
            "ts": iso(self.clock()),
        }

    async def _read(self, user_id: str, plan: Callable[[Connection, Position], T]) -> T:
        """`plan(conn, position)` over one consistent snapshot of the store. A stream that
        does not exist yet is created first (once per user)."""

        def run(conn: Connection) -> T | None:
            pos = stream.position(conn, user_id)
            return plan(conn, pos) if pos else None

        got = await self.reader.run(run)
        if got is None:
            await self.reader.write(stream.ensure_many_sync, [user_id], self.clock())
            got = await self.reader.run(run)
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
        if last_seq is not None:
            honourable = epoch == pos.epoch and 0 <= last_seq <= pos.last_seq
            read = stream.read_after(conn, user_id, last_seq, pos.last_seq) if honourable else None
            if read is not None and read.complete:
                kept, omitted = stream.compact(read.messages)
                return Replay(None, kept, self._complete(last_seq + 1, pos, omitted, True))
            snap = self._snapshot(conn, user_id, pos)
            return Replay(snap, [], self._complete(pos.last_seq + 1, pos, 0, False))
        snap = self._snapshot(conn, user_id, pos)
        read = stream.read_after(conn, user_id, pos.acked_seq, pos.last_seq)
        kept, omitted = stream.compact(read.messages)
        first = read.messages[0]["seq"] if read.messages else pos.last_seq + 1
        from_seq = pos.acked_seq + 1 if read.complete else first
        return Replay(snap, kept, self._complete(from_seq, pos, omitted, read.complete))

    def _complete(
        self, from_seq: int, pos: Position, omitted: int, recovered: bool
    ) -> dict[str, Any]:
        return {
            "type": "replay_complete",
            "fromSeq": from_seq,
            "toSeq": pos.last_seq,
            "epoch": pos.epoch,
            "recovered": recovered,
            "omitted": omitted,
            "ts": iso(self.clock()),
        }

    async def read_after(self, user_id: str, after: int, upto: int) -> stream.Read:
        async with self.engine.connect() as conn:
            return await conn.run_sync(stream.read_after, user_id, after, upto)

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
        # One short hop: every tab acks, and SQLite has one write lock (see Reader.write).
        await self.reader.write(stream.ack, user_id, seq)

    async def status_all(
        self, user_id: str, since: int | None, epoch: str | None
    ) -> dict[str, Any]:
        """The HTTP polling fallback's answer."""

        def plan(conn: Connection, pos: Position) -> dict[str, Any]:
            if since is not None and epoch == pos.epoch and 0 <= since <= pos.last_seq:
                read = stream.read_after(conn, user_id, since, pos.last_seq)
                if read.complete:
                    kept, omitted = stream.compact(read.messages)
                    return self._status(kept, pos, omitted, True)
            latest = [j.last_message for j in self._visible_jobs(conn, user_id)]
            latest_sorted = sorted((m for m in latest if m), key=lambda m: int(m.get("seq", 0)))
            return self._status(latest_sorted, pos, 0, since is None)

        return await self._read(user_id, plan)

    @staticmethod
    def _status(
        msgs: list[dict[str, Any]], pos: Position, omitted: int, recovered: bool
    ) -> dict[str, Any]:
        return {
            "messages": msgs,
            "lastSeq": pos.last_seq,
            "epoch": pos.epoch,
            "omitted": omitted,
            "recovered": recovered,
        }

    async def queue_status(self, user_id: str) -> dict[str, Any]:
        async with self.engine.connect() as conn:
            return await self.queue.status_for(conn, user_id)

    async def trim_expired(self) -> int:
        return await self.reader.write(stream.trim_expired, self.clock() - self.history_ttl)

    async def count_messages(self, user_id: str) -> int:
        async with self.engine.connect() as conn:
            n = await conn.execute(
                select(func.count()).select_from(messages).where(messages.c.user_id == user_id)
            )
            return int(n.scalar() or 0)
