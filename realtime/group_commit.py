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
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from . import stream
from .db import in_list
from .db import jobs as jobs_t
from .jobs import Conflict, DomainError, Job, NotFound, apply
from .stream import Stored

log = logging.getLogger(__name__)

MAX_BATCH = 512
# PostgreSQL may still pick a transaction as a deadlock victim against other writers (the
# queue notifier, a worker's claim); the batch is simply run again.
RETRIES = 3


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
        self._runner: asyncio.Task[None] | None = None
        self.batches = 0

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

    @staticmethod
    def _fail(batch: list[_Request], exc: BaseException) -> None:
        for r in batch:
            if not r.future.done():
                r.future.set_exception(exc)

    async def _commit(self, batch: list[_Request]) -> None:
        now = self.clock()
        results: list[tuple[_Request, Stored | DomainError]] = []
        async with self.engine.begin() as conn:
            # First statement a write: on SQLite the transaction now holds the write lock.
            await stream.ensure_many(conn, sorted({r.user_id for r in batch}), now)
            job_ids = sorted({r.message["jobId"] for r in batch})
            q = (
                select(jobs_t)
                .where(in_list(conn, jobs_t.c.job_id, "ids"))
                .order_by(jobs_t.c.job_id)
            )
            if conn.dialect.name == "postgresql":
                q = q.with_for_update()
            rows = (await conn.execute(q, {"ids": job_ids})).all()
            jobs = {row.job_id: self.from_row(row) for row in rows}
            existed = set(jobs)
            accepted: list[tuple[_Request, dict[str, Any]]] = []
            refused: list[tuple[_Request, DomainError]] = []
            for r in batch:
                job_id = r.message["jobId"]
                job = jobs.get(job_id)
                if job is None:
                    if not r.create:
                        refused.append(
                            (
                                r,
                                NotFound(
                                    f"job {job_id} does not exist", {"jobId": ["unknown job"]}
                                ),
                            )
                        )
                        continue
                    job = Job(job_id=job_id, user_id=r.user_id, submitted_at=now)
                elif job.user_id != r.user_id:
                    refused.append((r, Conflict(f"job {job_id} belongs to another user")))
                    continue
                try:
                    job, payload = apply(job, r.message, now)
                except DomainError as exc:
                    refused.append((r, exc))
                    continue
                jobs[job_id] = job
                accepted.append((r, payload))
            by_user: dict[str, list[dict[str, Any]]] = {}
            for r, payload in accepted:
                by_user.setdefault(r.user_id, []).append(payload)
            stored = await stream.append_many(conn, by_user, now, self.history_size)
            cursor = {u: iter(s) for u, s in stored.items()}
            changed: dict[str, Job] = {}
            for r, _ in accepted:
                s = next(cursor[r.user_id])
                job = jobs[r.message["jobId"]]
                job.last_message = s.payload
                job.updated_seq = s.seq
                changed[job.job_id] = job
                results.append((r, s))
            new_rows = [self.to_row(j) for j in changed.values() if j.job_id not in existed]
            if new_rows:
                await conn.execute(insert(jobs_t), new_rows)
            updates = []
            for j in changed.values():
                if j.job_id in existed:
                    row = self.to_row(j)
                    row["b_job_id"] = row.pop("job_id")
                    updates.append(row)
            if updates:
                await conn.execute(
                    update(jobs_t).where(jobs_t.c.job_id == bindparam("b_job_id")), updates
                )
            results.extend(refused)
        self.batches += 1
        for r, outcome in results:
            if r.future.done():
                continue
            if isinstance(outcome, DomainError):
                r.future.set_exception(outcome)
            else:
                r.future.set_result(outcome)
