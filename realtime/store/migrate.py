"""Bring the database schema to the newest alembic revision (idempotent, concurrency-safe)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).with_name("migrations")
# Any constant works; it only has to be the same in every process.
_PG_LOCK_KEY = 7_303_011


def _upgrade(conn: Connection) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")


async def migrate(engine: AsyncEngine) -> None:
    """Run every pending migration; processes starting together take turns."""
    async with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            # Several nodes may start at once: one migrates, the others wait and find nothing to do.
            await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
            try:
                await conn.run_sync(_upgrade)
                await conn.commit()
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
                await conn.commit()
        else:
            # BEGIN IMMEDIATE takes SQLite's write lock first, so concurrent starters serialise.
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
            await conn.run_sync(_upgrade)
            await conn.commit()
