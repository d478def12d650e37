"""Shared fixtures: real databases, a real server on a port, real Socket.IO clients.

- `db_url`: each test that uses it runs on SQLite (a temp file) and on PostgreSQL (a fresh
  database on the local server, dropped afterwards). Without PostgreSQL the PG run is skipped,
  except in CI (CI=true), where it fails.
- `settings`: Settings for a test service on `db_url` (`sqlite_settings`: SQLite only).
- `server`: the real app (create_app) listening on a loopback port.
- `connect`: a factory of `Client`s, real socketio.AsyncClient connections that record events.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import asyncpg
import pytest
import socketio
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from realtime.app import create_app
from realtime.auth import Auth
from realtime.config import Settings
from realtime.keys import LEDGER
from realtime.ledger import Ledger

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


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    async with fresh_pg_database() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Any) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/realtime.db"


@pytest.fixture(params=["sqlite", "postgres"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/realtime.db"
    else:
        async with fresh_pg_database() as url:
            yield url


async def stored_seqs(engine: Any, user_id: str) -> list[int]:
    """Every seq stored for `user_id`, ascending."""
    from sqlalchemy import select

    from realtime.db import messages

    async with engine.connect() as conn:
        q = select(messages.c.seq).where(messages.c.user_id == user_id).order_by(messages.c.seq)
        return [int(s) for s in (await conn.execute(q)).scalars().all()]


class Clock:
    """An injected clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def ledger(db_url: str, clock: Clock) -> AsyncIterator[Ledger]:
    """A migrated Ledger on `db_url` whose clock is `clock`."""
    from realtime.db import create_engine
    from realtime.ledger import Ledger
    from realtime.migrate import migrate

    ledger = Ledger(create_engine(db_url), history_size=1000, history_ttl=86400, clock=clock)
    await migrate(ledger.engine)
    yield ledger
    await ledger.close()


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


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(db_url)


@pytest.fixture
def sqlite_settings(sqlite_url: str) -> Settings:
    return make_settings(sqlite_url)


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


@pytest.fixture
async def start_server() -> AsyncIterator[ServerFactory]:
    """Start create_app(settings) on a loopback port; several per test are fine."""
    started: list[TestServer] = []

    async def start(settings: Settings) -> Server:
        app = create_app(settings)
        srv = TestServer(app, host="127.0.0.1", port=free_port())
        await srv.start_server(shutdown_timeout=1.0)
        started.append(srv)
        return Server(f"http://127.0.0.1:{srv.port}", app)

    yield start
    for srv in reversed(started):
        await srv.close()


@pytest.fixture
async def server(start_server: ServerFactory, settings: Settings) -> Server:
    return await start_server(settings)


@pytest.fixture
async def sqlite_server(start_server: ServerFactory, sqlite_settings: Settings) -> Server:
    return await start_server(sqlite_settings)


@pytest.fixture
async def http() -> AsyncIterator[ClientSession]:
    async with ClientSession() as session:
        yield session


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


@pytest.fixture
async def connect() -> AsyncIterator[ClientFactory]:
    """connect(server, user, lastSeq=None, epoch=None, transports=None, auth=None) -> Client
    already past its replay_complete (unless `wait=False`)."""
    clients: list[Client] = []

    async def make(
        server: Server,
        user: str | None = None,
        *,
        lastSeq: int | None = None,
        epoch: str | None = None,
        transports: list[str] | None = None,
        auth: dict[str, Any] | None = None,
        wait: bool = True,
        **kw: Any,
    ) -> Client:
        c = Client(transports)
        clients.append(c)
        if auth is None:
            assert user is not None
            auth = {"token": server.token(user)}
            if lastSeq is not None:
                auth["lastSeq"] = lastSeq
            if epoch is not None:
                auth["epoch"] = epoch
        await c.connect(server.url, auth, **kw)
        if wait:
            await c.replayed()
        return c

    yield make
    for c in clients:
        await c.close()


@pytest.fixture
def redis_server(tmp_path: Any) -> Any:
    """A private redis-server on a free port, killed by PID afterwards."""
    from .services import RedisServer

    srv = RedisServer(tmp_path)
    srv.start()
    yield srv
    srv.stop()
