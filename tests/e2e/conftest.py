"""Process-level fixtures: whole `serve` nodes on PostgreSQL and a private Redis."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import SECRET, free_port, wait_ready


class Node:
    """`python -m realtime serve` in its own process, stopped by PID."""

    def __init__(self, env: dict[str, str], stderr: Path | None = None) -> None:
        self.port = free_port()
        self.env = env
        self.stderr = stderr
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "realtime",
            "serve",
            "--port",
            str(self.port),
            env=self.env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=self.stderr.open("wb") if self.stderr else asyncio.subprocess.DEVNULL,
        )
        await wait_ready(self.url)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


@pytest.fixture
async def nodes(pg_url: str, redis_server: Any) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REALTIME_")}
    env.update(
        {
            "REALTIME_DATABASE_URL": pg_url,
            "REALTIME_REDIS_URL": redis_server.url,
            "REALTIME_JWT_SECRET": SECRET,
        }
    )
    started: list[Node] = []

    async def start(stderr: Path | None = None) -> Node:
        n = Node(env, stderr)
        started.append(n)
        await n.start()
        return n

    yield start
    for n in started:
        await n.stop()
