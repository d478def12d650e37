"""Four publisher processes on one user's stream, on SQLite and PostgreSQL: gap-free seqs."""

from __future__ import annotations

import asyncio
import os
import sys

from sqlalchemy import select

from realtime.store.engine import create_engine
from realtime.store.migrate import migrate
from realtime.store.tables import messages

PUBLISHER = """
import asyncio, sys
from realtime.tracker import Tracker
async def main(n, tag):
    async with Tracker.from_env() as t:
        for i in range(n):
            await t.publish({"type": "progress_update", "jobId": f"{tag}", "stage": "indexing",
                             "progress": min(i, 100)}, user_id="shared", create=True)
asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
"""


async def test_four_publisher_processes_get_gap_free_seqs(db_url: str) -> None:
    engine = create_engine(db_url)
    await migrate(engine)
    env = {**os.environ, "REALTIME_DATABASE_URL": db_url}
    env.pop("REALTIME_REDIS_URL", None)
    n = 60
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            PUBLISHER,
            str(n),
            f"job{i}",
            env=env,
            stderr=asyncio.subprocess.PIPE,
        )
        for i in range(4)
    ]
    for p in procs:
        _, err = await asyncio.wait_for(p.communicate(), 90)
        assert p.returncode == 0, err.decode()
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(messages.c.seq, messages.c.job_id)
                .where(messages.c.user_id == "shared")
                .order_by(messages.c.seq)
            )
        ).all()
    assert [r.seq for r in rows] == list(range(1, 4 * n + 1))
    # Each publisher's own messages are in its own order.
    for i in range(4):
        mine = [r.seq for r in rows if r.job_id == f"job{i}"]
        assert len(mine) == n and mine == sorted(mine)
    await engine.dispose()
