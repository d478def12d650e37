"""`python -m realtime worker` as a real process: a clean stop on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from sqlalchemy import func, select

from realtime.config import Settings
from realtime.domain.job import DEMO, Status
from realtime.store.engine import create_engine
from realtime.store.ledger import Ledger
from realtime.store.migrate import migrate
from realtime.store.tables import workers
from tests.support import until

VIDEO = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"


async def test_worker_command_exits_cleanly_on_sigterm(sqlite_settings: Settings) -> None:
    """`python -m realtime worker`: SIGTERM hands the running job back (it will retry at once,
    on another worker) and removes the worker's row; exit code 0."""
    env = {**os.environ, "REALTIME_DATABASE_URL": sqlite_settings.database_url}
    env.pop("REALTIME_REDIS_URL", None)
    engine = create_engine(sqlite_settings.database_url)
    await migrate(engine)
    ledger = Ledger(engine, history_size=1000, history_ttl=86400)
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "realtime", "worker", "--concurrency", "2", "--speed", "5"),
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        job, _ = await ledger.submit("ann", VIDEO, pipeline=DEMO)
        await until(lambda: job_running(ledger, job.job_id), 15, "the worker to start the job")
        proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), 10)
        assert proc.returncode == 0, stderr.decode()
        found = await ledger.job(job.job_id)
        assert found is not None
        handed_back = found[0]
        assert handed_back.status == Status.RETRYING and handed_back.error_code == "worker_stopped"
        async with engine.connect() as conn:
            assert (await conn.execute(select(func.count()).select_from(workers))).scalar() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await engine.dispose()


async def job_running(ledger: Ledger, job_id: str) -> bool:
    found = await ledger.job(job_id)
    return found is not None and found[0].status == Status.PROCESSING
