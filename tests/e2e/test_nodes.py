"""Whole `serve` processes: kill -9 and SIGTERM drains lose nothing; abuse is bounded."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import aiohttp
import pytest

from tests.support import SECRET, Client, make_settings

from .conftest import Node
from .test_redis_fanout import tracker_for


async def follow_over(
    first: Node, second: Node, user: str, leave: Any, publish_n: int, pg_url: str, redis_url: str
) -> tuple[list[int], float]:
    """A client on `first`; `leave(first)` while a publisher runs; the client goes on from
    `second` with its lastSeq (as behind a load balancer). Returns every seq it saw."""
    from realtime.web.auth import Auth

    token = Auth(SECRET).issue(user)
    c1 = Client()
    await c1.connect(first.url, {"token": token})
    await c1.replayed()
    epoch = c1.of("snapshot")[0]["epoch"]
    async with tracker_for(pg_url, redis_url) as tracker:

        async def publish() -> None:
            for i in range(publish_n):
                # One job per message, so that replay compaction keeps every seq visible.
                await tracker.update_progress(f"job{i}", "indexing", 50, user_id=user)
                await asyncio.sleep(0.03)

        task = asyncio.create_task(publish())
        await asyncio.sleep(0.5)
        took = await leave(first)
        await c1.wait_for(lambda: not c1.sio.connected, 10)
        last = c1.seqs()[-1] if c1.seqs() else 0
        c2 = Client()
        await c2.connect(second.url, {"token": token, "lastSeq": last, "epoch": epoch})
        await task
        await c2.wait_for(lambda: bool(c2.seqs()) and c2.seqs()[-1] == publish_n, 10)
        await c2.close()
    seen = c1.seqs() + c2.seqs()
    return seen, took


async def kill(node: Node) -> float:
    """kill -9 of a node (a `leave` for follow_over)."""
    assert node.proc is not None
    node.proc.send_signal(signal.SIGKILL)
    await node.proc.wait()
    return 0.0


async def term(node: Node) -> float:
    """SIGTERM of a node; how long its drain took (a `leave` for follow_over)."""
    assert node.proc is not None
    t0 = time.monotonic()
    node.proc.send_signal(signal.SIGTERM)
    await asyncio.wait_for(node.proc.wait(), 10)
    return time.monotonic() - t0


async def test_kill_9_of_a_node_loses_nothing(nodes: Any, pg_url: str, redis_server: Any) -> None:
    a, b = await nodes(), await nodes()

    seen, _ = await follow_over(a, b, "k9", kill, 60, pg_url, redis_server.url)
    assert seen == list(range(1, 61))


async def test_sigterm_drains_clients_and_exits_in_time(
    nodes: Any, pg_url: str, redis_server: Any
) -> None:
    a, b = await nodes(), await nodes()

    seen, took = await follow_over(a, b, "drain", term, 60, pg_url, redis_server.url)
    assert seen == list(range(1, 61))
    assert took < 10 and a.proc is not None and a.proc.returncode == 0


async def test_idle_engineio_connections_are_closed(start_server: Any, sqlite_url: str) -> None:
    server = await start_server(make_settings(sqlite_url, handshake_timeout=1.0))
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/socket.io/?EIO=4&transport=polling") as r:
            body = await r.text()
        sid = body[body.index('"sid":"') + 7 :].split('"', 1)[0]
        await asyncio.sleep(3.0)
        async with http.get(f"{server.url}/socket.io/?EIO=4&transport=polling&sid={sid}") as r:
            assert r.status == 400  # the session is gone


async def test_foreign_origin_is_refused_on_both_transports(
    start_server: Any, sqlite_url: str
) -> None:
    server = await start_server(make_settings(sqlite_url, cors_origins=("https://app.example",)))
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{server.url}/socket.io/?EIO=4&transport=polling",
            headers={"Origin": "https://evil.example"},
        ) as r:
            assert r.status == 400
        async with http.get(
            f"{server.url}/socket.io/?EIO=4&transport=polling",
            headers={"Origin": "https://app.example"},
        ) as r:
            assert r.status == 200
        ws_url = f"{server.url}/socket.io/?EIO=4&transport=websocket"
        with pytest.raises(aiohttp.WSServerHandshakeError):
            async with http.ws_connect(ws_url, headers={"Origin": "https://evil.example"}):
                pass
        async with http.ws_connect(ws_url, headers={"Origin": "https://app.example"}) as ws:
            opened = await asyncio.wait_for(ws.receive_str(), 5)
            assert opened.startswith("0{")
        # The node's own origin (its demo page) stays allowed with a list configured.
        async with http.get(
            f"{server.url}/socket.io/?EIO=4&transport=polling", headers={"Origin": server.url}
        ) as r:
            assert r.status == 200
