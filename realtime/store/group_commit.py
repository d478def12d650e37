"""Group commit: concurrent publishes share one transaction.

A publish waits for the transaction that is already running (if any) to end, then joins the
next one together with everything else that arrived meanwhile. Nothing is delayed on purpose:
a lone publish commits at once; under load a transaction carries many messages, which is what
lets one SQLite file or one PostgreSQL connection store thousands of messages a second.

Each message is still checked on its own (writes.commit, the one write path): one that is
refused fails only its own caller, and seqs stay gap-free.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from ..domain.errors import DomainError
from .checkpoint import WalCheckpointer
from .engine import is_sqlite_file, sync_twin
from .estimates import Estimates
from .stream import Stored
from .writes import Outcome, Write, commit

log = logging.getLogger(__name__)

MAX_BATCH = 512
# PostgreSQL may still pick a transaction as a deadlock victim against other writers (the
# queue notifier, a worker's claim); the batch is simply run again.
RETRIES = 3


@dataclass
class _Request:
    write: Write
    future: asyncio.Future[Stored]


class GroupCommit:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        history_size: int,
        clock: Callable[[], float],
        estimates: Estimates | None = None,
    ) -> None:
        self.engine = engine
        self.history_size = history_size
        self.clock = clock
        self.estimates = estimates
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

    async def submit(self, write: Write) -> Stored:
        """Store `write` in the next batch; raises its DomainError when it is refused."""
        future: asyncio.Future[Stored] = asyncio.get_running_loop().create_future()
        self.pending.append(_Request(write, future))
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
            if (
                not self.pending
                and self._checkpointer is not None
                and self._checkpointer.unfinished
                and self._thread is not None
            ):
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
        work = [r.write for r in batch]
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

    def _write_in_thread(self, work: list[Write], now: float) -> list[Outcome]:
        assert self._thread_engine is not None
        self._finish_checkpoint(False)
        with self._thread_engine.begin() as conn:
            return self._write(conn, work, now)

    def _write(self, conn: Connection, work: list[Write], now: float) -> list[Outcome]:
        """The whole batch in one transaction; runs under the async connection (run_sync) or,
        for SQLite, on a plain connection in this committer's own thread."""
        return commit(conn, work, now, self.history_size, self.estimates)
