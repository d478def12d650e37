"""Group commit: concurrent publishes share one transaction.

A publish waits for the transaction that is already running (if any) to end, then joins the
next one together with everything else that arrived meanwhile. Nothing is delayed on purpose:
a lone publish commits at once; under load a transaction carries many messages, which is what
lets one SQLite file or one PostgreSQL connection store thousands of messages a second.

Each message is still checked on its own (jobs.apply is pure): one that is refused fails only
its own caller. Seqs stay gap-free because they are handed out inside the transaction
(stream.append_many) for the messages that passed, in arrival order per user.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, insert, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from . import stream
from .checkpoint import WalCheckpointer
from .db import in_list, is_sqlite_file, plan_per_execution, sync_twin
from .db import jobs as jobs_t
from .jobs import Conflict, DomainError, Job, NotFound, apply
from .stream import Stored

log = logging.getLogger(__name__)

MAX_BATCH = 512
# PostgreSQL may still pick a transaction as a deadlock victim against other writers (the
# queue notifier, a worker's claim); the batch is simply run again.
RETRIES = 3


# Built once: constructing a statement costs about as much as running it.
_INSERT_JOBS = insert(jobs_t)
_UPDATE_JOBS = update(jobs_t).where(jobs_t.c.job_id == bindparam("b_job_id"))


@functools.cache
def _jobs_q(dialect: str) -> Any:
    """The jobs of `:ids`, locked in id order (PostgreSQL)."""
    q = select(jobs_t).where(in_list(dialect, jobs_t.c.job_id, "ids")).order_by(jobs_t.c.job_id)
    return q.with_for_update() if dialect == "postgresql" else q


_Work = tuple[str, dict[str, Any], bool]  # user id, message, create


@dataclass
class _Request:
    user_id: str
    message: dict[str, Any]
    create: bool
    future: asyncio.Future[Stored]


class GroupCommit:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        history_size: int,
        clock: Callable[[], float],
        to_row: Callable[[Job], dict[str, Any]],
        from_row: Callable[[Any], Job],
    ) -> None:
        self.engine = engine
        self.history_size = history_size
        self.clock = clock
        self.to_row = to_row
        self.from_row = from_row
        self.pending: list[_Request] = []
        # SQLite: aiosqlite pays a thread hop per statement; a batch is ~7 statements. The
        # committer keeps its own plain connection in its own thread: one hop per batch.
        self._thread_engine: Engine | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._checkpointer: WalCheckpointer | None = None
        if is_sqlite_file(engine):
            self._thread_engine = sync_twin(engine, autocheckpoint=False)
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="group-commit")
            self._checkpointer = WalCheckpointer(engine)
        self._runner: asyncio.Task[None] | None = None
        self.batches = 0

    async def close(self) -> None:
        if self._thread_engine is not None and self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(
                self._thread, self._thread_engine.dispose
            )
            self._thread.shutdown(wait=False)
        if self._checkpointer is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._checkpointer.close)

    async def publish(self, user_id: str, message: dict[str, Any], *, create: bool) -> Stored:
        future: asyncio.Future[Stored] = asyncio.get_running_loop().create_future()
        self.pending.append(_Request(user_id, message, create, future))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run())
        return await future

    async def _run(self) -> None:
        while self.pending:
            batch, self.pending = self.pending[:MAX_BATCH], self.pending[MAX_BATCH:]
            for attempt in range(RETRIES):
                try:
                    await self._commit(batch)
                    break
                except DBAPIError as exc:
                    retryable = "deadlock" in str(exc).lower() or "locked" in str(exc).lower()
                    if not retryable or attempt == RETRIES - 1:
                        self._fail(batch, exc)
                        break
                    log.info("group commit retried after: %s", exc)
                except BaseException as exc:
                    self._fail(batch, exc)
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                    break
            if not self.pending and self._checkpointer is not None and self._thread is not None:
                # Idle: the moment to finish a WAL checkpoint (publishes arriving meanwhile
                # wait for it, but none is already waiting).
                await asyncio.get_running_loop().run_in_executor(
                    self._thread, self._finish_checkpoint, True
                )

    @staticmethod
    def _fail(batch: list[_Request], exc: BaseException) -> None:
        for r in batch:
            if not r.future.done():
                r.future.set_exception(exc)

    async def _commit(self, batch: list[_Request]) -> None:
        now = self.clock()
        work = [(r.user_id, r.message, r.create) for r in batch]
        if self._thread_engine is not None:
            outcomes = await asyncio.get_running_loop().run_in_executor(
                self._thread, self._write_in_thread, work, now
            )
        else:
            async with self.engine.begin() as conn:
                outcomes = await conn.run_sync(self._write, work, now)
        self.batches += 1
        if self._checkpointer is not None:
            self._checkpointer.committed()
        for r, outcome in zip(batch, outcomes, strict=True):
            if r.future.done():
                continue
            if isinstance(outcome, DomainError):
                r.future.set_exception(outcome)
            else:
                r.future.set_result(outcome)

    def _finish_checkpoint(self, idle: bool) -> None:
        if self._checkpointer is not None and self._thread_engine is not None:
            self._checkpointer.finish(self._thread_engine, idle)

    def _write_in_thread(self, work: list[_Work], now: float) -> list[Stored | DomainError]:
        assert self._thread_engine is not None
        self._finish_checkpoint(False)
        with self._thread_engine.begin() as conn:
            return self._write(conn, work, now)

    def _write(self, conn: Connection, work: list[_Work], now: float) -> list[Stored | DomainError]:
        """The whole batch in one transaction; runs under the async connection (run_sync) or,
        for SQLite, on a plain connection in this committer's own thread."""
        outcomes: list[Stored | DomainError | None] = [None] * len(work)
        # First statement a write: on SQLite the transaction now holds the write lock.
        stream.ensure_many_sync(conn, sorted({u for u, _, _ in work}), now)
        job_ids = sorted({m["jobId"] for _, m, _ in work})
        plan_per_execution(conn, True)
        rows = conn.execute(_jobs_q(conn.dialect.name), {"ids": job_ids})
        jobs = {row.job_id: self.from_row(row) for row in rows}
        lasts = stream.lock_streams(conn, (u for u, _, _ in work))
        plan_per_execution(conn, False)
        existed = set(jobs)
        accepted: list[tuple[int, str, dict[str, Any]]] = []
        for i, (user_id, message, create) in enumerate(work):
            job_id = message["jobId"]
            job = jobs.get(job_id)
            if job is None:
                if not create:
                    outcomes[i] = NotFound(
                        f"job {job_id} does not exist", {"jobId": ["unknown job"]}
                    )
                    continue
                job = Job(job_id=job_id, user_id=user_id, submitted_at=now)
            elif job.user_id != user_id:
                outcomes[i] = Conflict(f"job {job_id} belongs to another user")
                continue
            try:
                job, payload = apply(job, message, now)
            except DomainError as exc:
                outcomes[i] = exc
                continue
            jobs[job_id] = job
            accepted.append((i, user_id, payload))
        by_user: dict[str, list[dict[str, Any]]] = {}
        for _, user_id, payload in accepted:
            by_user.setdefault(user_id, []).append(payload)
        stored = stream.append_many_sync(conn, by_user, now, self.history_size, lasts)
        cursor = {u: iter(s) for u, s in stored.items()}
        changed: dict[str, Job] = {}
        for i, user_id, _ in accepted:
            s = next(cursor[user_id])
            job = jobs[work[i][1]["jobId"]]
            job.last_message = s.payload
            job.updated_seq = s.seq
            changed[job.job_id] = job
            outcomes[i] = s
        new_rows = [self.to_row(j) for j in changed.values() if j.job_id not in existed]
        if new_rows:
            conn.execute(_INSERT_JOBS, new_rows)
        updates = []
        for j in changed.values():
            if j.job_id in existed:
                row = self.to_row(j)
                row["b_job_id"] = row.pop("job_id")
                updates.append(row)
        if updates:
            conn.execute(_UPDATE_JOBS, updates)
        assert all(o is not None for o in outcomes)
        return outcomes  # type: ignore[return-value]
