"""Fixtures: real databases, a real server on a port, real Socket.IO clients.

- `db_url`: each test that uses it runs on SQLite (a temp file) and on PostgreSQL (a fresh
  database on the local server, dropped afterwards). Without PostgreSQL the PG run is skipped,
  except in CI (CI=true), where it fails.
- `settings`: Settings for a test service on `db_url` (`sqlite_settings`: SQLite only).
- `server`: the real app (create_app) listening on a loopback port.
- `connect`: a factory of `Client`s, real socketio.AsyncClient connections that record events.

Tests that use PostgreSQL are marked `postgres`, those that start a redis-server `redis`
(so `pytest -m "not postgres"` runs without PostgreSQL).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from realtime.config import Settings
from realtime.store.ledger import Ledger
from realtime.web.app import create_app

from .support import (
    Client,
    ClientFactory,
    Clock,
    Server,
    ServerFactory,
    free_port,
    fresh_pg_database,
    make_settings,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = getattr(item, "fixturenames", ())
        callspec = getattr(item, "callspec", None)
        on_pg = "pg_url" in names or (
            callspec is not None and callspec.params.get("db_url") == "postgres"
        )
        if on_pg:
            item.add_marker(pytest.mark.postgres)
        if "redis_server" in names:
            item.add_marker(pytest.mark.redis)


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


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def ledger(db_url: str, clock: Clock) -> AsyncIterator[Ledger]:
    """A migrated Ledger on `db_url` whose clock is `clock`."""
    from realtime.store.engine import create_engine
    from realtime.store.ledger import Ledger
    from realtime.store.migrate import migrate

    ledger = Ledger(create_engine(db_url), history_size=1000, history_ttl=86400, clock=clock)
    await migrate(ledger.engine)
    yield ledger
    await ledger.close()


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(db_url)


@pytest.fixture
def sqlite_settings(sqlite_url: str) -> Settings:
    return make_settings(sqlite_url)


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
