"""Transactions in one thread hop: a sync function over one connection, for reads and writes.

aiosqlite pays a thread hop for every statement; here a whole transaction is one hop (a
plain pysqlite connection in a thread of its own), and PostgreSQL runs it under one
`run_sync`. Reads and writes alike:

- `read`: what a connecting client is sent (snapshot, replayed messages, `replay_complete`) must come
from one moment of the store, but taking the write lock for it (as a write transaction
would on SQLite) serialises every connect behind every publish. A read transaction gives the
same consistency without locks: WAL on SQLite, REPEATABLE READ on PostgreSQL. On SQLite the
whole read also runs in one thread hop instead of one per statement (aiosqlite).
- `write`: a short write transaction (BEGIN IMMEDIATE on SQLite: the write lock first). A
  write spread over several hops would hold SQLite's one write lock for as long as the event
  loop takes to come back to it, each time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from .engine import is_sqlite_file, sync_twin

T = TypeVar("T")


class Hops:
    def __init__(self, engine: AsyncEngine, threads: int = 2) -> None:
        self.engine = engine
        self._twin: Engine | None = None
        self._threads: ThreadPoolExecutor | None = None
        if is_sqlite_file(engine):
            self._twin = sync_twin(engine, threads, autocommit=True)
            self._threads = ThreadPoolExecutor(threads, thread_name_prefix="store-hop")

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(conn, *args)` inside one read-only transaction."""
        if self._threads is not None:
            return await asyncio.get_running_loop().run_in_executor(
                self._threads, self._in_thread, fn, args
            )
        async with self.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execution_options(
                    isolation_level="REPEATABLE READ", postgresql_readonly=True
                )
                async with conn.begin():
                    return await conn.run_sync(fn, *args)
            # In-memory SQLite (tests): bracket the transaction by hand, as in _in_thread.
            await conn.exec_driver_sql("BEGIN")
            try:
                return await conn.run_sync(fn, *args)
            finally:
                await conn.exec_driver_sql("ROLLBACK")

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(conn, *args)` inside one short write transaction."""
        if self._threads is not None:
            return await asyncio.get_running_loop().run_in_executor(
                self._threads, self._write_in_thread, fn, args
            )
        async with self.engine.begin() as conn:
            return await conn.run_sync(fn, *args)

    def _write_in_thread(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        assert self._twin is not None
        with self._twin.connect() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                result = fn(conn, *args)
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
            conn.exec_driver_sql("COMMIT")
            return result

    def _in_thread(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        assert self._twin is not None
        with self._twin.connect() as conn:
            # BEGIN is deferred: the snapshot is taken by the first SELECT and kept to the end.
            conn.exec_driver_sql("BEGIN")
            try:
                return fn(conn, *args)
            finally:
                conn.exec_driver_sql("ROLLBACK")

    async def close(self) -> None:
        if self._twin is not None and self._threads is not None:
            await asyncio.get_running_loop().run_in_executor(self._threads, self._twin.dispose)
            self._threads.shutdown(wait=False)
