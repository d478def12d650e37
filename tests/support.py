"""Helpers the test suites share: real databases, a real server, real Socket.IO clients.

Fixtures that hand these out live in conftest.py; anything a test module imports by name
lives here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import asyncpg
import pytest
import socketio
from aiohttp import web

from realtime.config import Settings
from realtime.domain.job import Job
from realtime.store.claims import Claims, StartMessage
from realtime.store.ledger import Ledger
from realtime.store.stream import Stored
from realtime.web.auth import Auth
from realtime.web.keys import LEDGER

SECRET = "test-secret-0123456789abcdef-0123456789"
API_KEY = "test-api-key-0123456789"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _pg_available() -> bool:
    try:
        conn = await asyncpg.connect(PG_ADMIN, timeout=3)
    except Exception:
        return False
    await conn.close()
    return True


@asynccontextmanager
async def fresh_pg_database() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards."""
    if not await _pg_available():
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL is not reachable at 127.0.0.1:5432 (required in CI)")
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    name = f"rt_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


async def stored_seqs(engine: Any, user_id: str) -> list[int]:
    """Every seq stored for `user_id`, ascending."""
    from sqlalchemy import select

    from realtime.store.tables import messages

    async with engine.connect() as conn:
        q = select(messages.c.seq).where(messages.c.user_id == user_id).order_by(messages.c.seq)
        return [int(s) for s in (await conn.execute(q)).scalars().all()]


class Clock:
    """An injected clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def submit_jobs(ledger: Ledger, clock: Clock, n: int, users: int = 2) -> list[str]:
    """Queue n jobs round-robin over user0..user{users-1}, 1 ms apart; their ids in order."""
    ids = []
    for i in range(n):
        clock.now += 0.001
        job, _ = await ledger.submit(f"user{i % users}", "https://youtu.be/dQw4w9WgXcQ")
        ids.append(job.job_id)
    return ids


def make_settings(url: str, **kw: Any) -> Settings:
    base = Settings(
        database_url=url,
        jwt_secret=SECRET,
        api_key=API_KEY,
        follow_interval=0.1,
        demo=True,
    )
    return replace(base, **kw)


@dataclass
class Server:
    url: str
    app: web.Application
    auth: Auth = field(default_factory=lambda: Auth(SECRET))

    def token(self, user_id: str, **kw: Any) -> str:
        return self.auth.issue(user_id, **kw)

    def headers(self, user_id: str, **kw: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user_id, **kw)}"}

    @property
    def ledger(self) -> Any:
        return self.app[LEDGER]


ServerFactory = Callable[..., Awaitable[Server]]


class Client:
    """A real Socket.IO client that records every server event in arrival order."""

    EVENTS = (
        "progress_update",
        "queue_update",
        "processing_complete",
        "processing_error",
        "snapshot",
        "replay_complete",
    )

    def __init__(self, transports: list[str] | None = None) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.transports = transports or ["websocket"]
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.connect_error: Any = None
        self._changed = asyncio.Event()
        for name in self.EVENTS:
            self.sio.on(name, self._recorder(name))

        @self.sio.on("connect_error")
        async def _on_error(data: Any) -> None:
            self.connect_error = data
            self._changed.set()

    def _recorder(self, name: str) -> Callable[[Any], Awaitable[None]]:
        async def record(data: Any) -> None:
            self.events.append((name, data))
            self._changed.set()

        return record

    async def connect(self, url: str, auth: dict[str, Any] | None, **kw: Any) -> None:
        await self.sio.connect(url, auth=auth, transports=self.transports, wait_timeout=10, **kw)

    def seqs(self) -> list[int]:
        return [d["seq"] for n, d in self.events if "seq" in d and n not in ("snapshot",)]

    def of(self, name: str) -> list[dict[str, Any]]:
        return [d for n, d in self.events if n == name]

    async def wait_for(self, pred: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out; events so far: {self.events[-5:]}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.5))

    async def replayed(self, timeout: float = 10.0) -> dict[str, Any]:
        await self.wait_for(lambda: bool(self.of("replay_complete")), timeout)
        return self.of("replay_complete")[-1]

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()


ClientFactory = Callable[..., Awaitable[Client]]


async def claim(
    claims: Claims, worker_id: str, start: StartMessage, pipeline: str | None = None
) -> Job | None:
    """The job a claim took (None: nothing to claim); what it stored is not sent anywhere."""
    got = await claims.claim(worker_id, start, pipeline=pipeline)
    return got[0] if got is not None else None


async def append_raw(
    ledger: Ledger, user_id: str, payloads: Sequence[dict[str, Any]], now: float, keep: int
) -> list[Stored]:
    """Store payloads on a user's stream directly (no job, no checks), in one transaction."""
    from realtime.store import stream

    def tx(conn: Any) -> list[Stored]:
        stream.ensure(conn, [user_id], now)
        return stream.append(conn, {user_id: payloads}, now, keep)[user_id]

    return await ledger.hops.write(tx)


async def until(pred: Callable[[], Any], timeout: float, what: str) -> None:
    """Poll the async predicate `pred` until it is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not await pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def wait_ready(url: str, timeout: float = 20.0, why: Callable[[], str] = str) -> None:
    """Poll `url`/readyz until it answers 200; fail with `why()` after `timeout` seconds."""
    import aiohttp

    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(f"{url}/readyz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            assert time.monotonic() < deadline, f"{url} did not become ready: {why()}"
            await asyncio.sleep(0.1)


def stop_process(proc: Any, sig: int | None = None, timeout: float = 15.0) -> None:
    """Stop a process we started (by PID): `sig` (SIGTERM), then SIGKILL after `timeout`."""
    import signal
    import subprocess

    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM if sig is None else sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)
