"""Bring the database schema to the newest alembic revision (idempotent, concurrency-safe)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).with_name("migrations")
# The newest revision in migrations/versions (a test checks they agree): a publishing process
# whose database is already there skips alembic altogether (RQ forks a process per job).
HEAD = "0003"
# Any constant works; it only has to be the same in every process.
_PG_LOCK_KEY = 7_303_011


def _revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _upgrade(conn: Connection) -> tuple[str | None, str | None]:
    before = _revision(conn)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")
    return before, _revision(conn)


def describe(before: str | None, after: str | None) -> str:
    """What a migration did, in one line."""
    if before == after:
        return f"database schema is up to date (revision {after})"
    if before is None:
        return f"database schema created (revision {after})"
    return f"database schema upgraded from revision {before} to {after}"


async def ensure_schema(engine: AsyncEngine) -> None:
    """The schema is at HEAD: one query when it already is, a migration otherwise."""
    try:
        async with engine.connect() as conn:
            current = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    except Exception:  # no alembic_version table yet: a new database
        current = None
    if current != HEAD:
        await migrate(engine)


async def migrate(engine: AsyncEngine) -> tuple[str | None, str | None]:
    """Run every pending migration; processes starting together take turns. Returns the
    schema revision before and after."""
    async with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # Several nodes may start at once: one migrates, the others wait and find nothing to do.
            await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
            try:
                revisions = await conn.run_sync(_upgrade)
                await conn.commit()
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
                await conn.commit()
        else:
            # BEGIN IMMEDIATE takes SQLite's write lock first, so concurrent starters serialise.
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
            revisions = await conn.run_sync(_upgrade)
            await conn.commit()
    return revisions
