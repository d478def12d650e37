"""Engines and the SQL helpers every store module shares: one place for each backend's settings."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, any_, bindparam, event, text
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, QueuePool

# How long a SQLite statement waits for another process's write lock before it fails
# ("database is locked": a 503 at the API, exit 1 at the CLI) instead of hanging the caller.
BUSY_SECONDS = 5.0


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(url: str) -> AsyncEngine:
    """An engine with the settings each backend needs for gap-free appends."""
    if is_sqlite(url):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        # A small pool: opening an aiosqlite connection starts a thread, too slow per query.
        engine = create_async_engine(
            url,
            poolclass=AsyncAdaptedQueuePool,
            pool_size=4,
            max_overflow=4,
            connect_args={"timeout": BUSY_SECONDS},
        )

        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        url,
        pool_size=10,
        max_overflow=20,
        pool_pre_ping=True,
        pool_timeout=10,
        connect_args={"timeout": 5, "command_timeout": 30},
    )


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={int(BUSY_SECONDS * 1000)}")
    cur.close()


def sqlite_path(engine: AsyncEngine) -> Path | None:
    """The SQLite file behind `engine` (None: not SQLite, or in memory)."""
    if not is_sqlite_file(engine):
        return None
    return Path(str(engine.url.database)).expanduser()


def is_sqlite_file(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:")


def sync_twin(
    engine: AsyncEngine, size: int = 1, *, autocommit: bool = False, autocheckpoint: bool = True
) -> Engine:
    """A plain (pysqlite) engine on the same SQLite file, for work done in one thread hop.
    With `autocommit`, pysqlite issues no BEGIN of its own: the caller brackets its
    transaction itself (pysqlite would not begin one before a SELECT). Without
    `autocheckpoint`, its commits never checkpoint the WAL (see checkpoint.py)."""
    url = engine.url.set(drivername="sqlite")
    twin = sa_create_engine(
        url,
        poolclass=QueuePool,
        pool_size=size,
        max_overflow=0,
        connect_args={"timeout": BUSY_SECONDS, "check_same_thread": False},
        **({"isolation_level": "AUTOCOMMIT"} if autocommit else {}),
    )
    event.listen(twin, "connect", _sqlite_pragmas)
    if not autocheckpoint:
        event.listen(twin, "connect", _no_autocheckpoint)
    return twin


def _no_autocheckpoint(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.execute("PRAGMA wal_autocheckpoint=0")


@functools.cache
def insert_ignore(dialect: str, table: Table) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING for the `dialect` backend; execute it with the row (or
    rows) as parameters. Built once per backend and table."""
    module: Any = postgresql if dialect == "postgresql" else sqlite
    return module.insert(table).on_conflict_do_nothing()


def executemany(conn: Any, statement: Any, rows: list[dict[str, Any]]) -> None:
    """`conn.execute(statement, rows)`, with every row holding the same keys. On SQLite the
    statement is compiled once per key set and the rows go straight to pysqlite's
    executemany, in the same transaction: SQLAlchemy's per-row parameter processing was
    the largest Python cost of a publish (the columns here need no bind processing:
    text, numbers, booleans)."""
    if not rows:
        return
    if conn.dialect.driver not in ("pysqlite", "asyncpg"):
        conn.execute(statement, rows)
        return
    sql, order = _compiled(statement, tuple(rows[0]), conn.dialect)
    # exec_driver_sql: no compile and no per-row parameter processing, but still
    # SQLAlchemy's transaction and its wrapping of driver errors (deadlocks, lost
    # connections), which the callers' retries and 503s depend on.
    conn.exec_driver_sql(sql, [tuple(row[k] for k in order) for row in rows])


@functools.cache
def _compiled(statement: Any, keys: tuple[str, ...], dialect: Any) -> tuple[str, tuple[str, ...]]:
    """The SQL text and parameter order of `statement` for rows with `keys` (statements are
    module constants, so this cache stays a handful of entries)."""
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    return str(compiled), tuple(compiled.positiontup or ())


def in_list(dialect: str, column: Any, name: str) -> Any:
    """`column IN (:name...)` whose SQL text does not depend on the list's length: `= ANY(array)`
    on PostgreSQL (one prepared statement for every batch size), an expanding IN on SQLite."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=postgresql.ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))


def plan_per_execution(conn: Any, on: bool) -> None:
    """PostgreSQL: plan the next statements for their actual parameters (`on`), or go back to
    the plan cache. asyncpg prepares every statement, and after five runs PostgreSQL may
    settle on one generic plan, made while the tables were small: `key = ANY($1)` over a
    table that has grown since then runs as a sequential scan costing rows x keys (243 ms
    for a batch of 512 job ids). Only for those lookups: planning every row of a batch
    INSERT would cost more than it saves."""
    if conn.dialect.name == "postgresql":
        mode = "force_custom_plan" if on else "auto"
        conn.exec_driver_sql(f"SET LOCAL plan_cache_mode = {mode}")


def is_unavailable(exc: BaseException) -> bool:
    """The database is down, unreachable, locked past its timeout, read-only or full: worth a
    503 and a retry, not a 500."""
    if isinstance(exc, OperationalError | InterfaceError | TimeoutError | OSError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    # Raised by asyncpg outside SQLAlchemy's wrapping (pool checkout, a dropped connection).
    return type(exc).__module__.startswith("asyncpg") and "Connection" in type(exc).__name__


async def ping(engine: AsyncEngine, timeout: float = 1.5) -> bool:
    """True when the database answers a trivial query within `timeout`."""

    async def _q() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    try:
        await asyncio.wait_for(_q(), timeout)
    except Exception:
        return False
    return True
