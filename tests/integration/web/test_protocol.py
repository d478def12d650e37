"""The rules of the Engine.IO v4 and Socket.IO v5 protocol documents that apply to an
authenticated service, checked with raw frames against a real server (the official test
suites cannot ship here). Which rules do not apply, and why, is in the README."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest

from realtime.web.auth import Auth
from tests.support import SECRET, make_settings

EIO = "/socket.io/?EIO=4"


@pytest.fixture
async def fast(start_server: Any, sqlite_url: str) -> Any:
    """A server with a one-second heartbeat and a small payload limit."""
    return await start_server(
        make_settings(sqlite_url, ping_interval=1, ping_timeout=1, max_message_bytes=8192)
    )


def token(user: str = "proto") -> str:
    return Auth(SECRET).issue(user, ttl=600)


async def handshake(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with http.get(f"{url}{EIO}&transport=polling") as r:
        assert r.status == 200
        body = await r.text()
    assert body.startswith("0")
    return json.loads(body[1:])  # type: ignore[no-any-return]


async def test_the_handshake_names_sid_upgrades_heartbeat_and_payload_limit(fast: Any) -> None:
    async with aiohttp.ClientSession() as http:
        open_ = await handshake(http, fast.url)
    assert isinstance(open_["sid"], str) and open_["sid"]
    assert open_["upgrades"] == ["websocket"]
    assert (open_["pingInterval"], open_["pingTimeout"]) == (1000, 1000)
    assert open_["maxPayload"] == 8192


async def test_unknown_version_transport_and_session_are_400(fast: Any) -> None:
    async with aiohttp.ClientSession() as http:
        for query in (
            "/socket.io/?EIO=3&transport=polling",
            f"{EIO}&transport=carrier-pigeon",
            f"{EIO}&transport=polling&sid=nope",
        ):
            async with http.get(f"{fast.url}{query}") as r:
                assert r.status == 400, query


async def test_heartbeat_pings_and_drops_a_peer_that_never_pongs(fast: Any) -> None:
    url = f"{fast.url}{EIO}&transport=websocket"
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(url) as alive,
        http.ws_connect(url) as silent,
    ):
        assert (await alive.receive_str()).startswith("0{")
        assert (await silent.receive_str()).startswith("0{")
        t0 = time.monotonic()
        assert await asyncio.wait_for(alive.receive_str(), 3) == "2"
        await alive.send_str("3")
        assert time.monotonic() - t0 < 2.5
        # The silent one got its PING too, answered nothing, and is closed.
        assert await asyncio.wait_for(silent.receive_str(), 3) == "2"
        closed = await asyncio.wait_for(silent.receive(), 5)
        assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert await asyncio.wait_for(alive.receive_str(), 3) == "2", "still alive"


async def test_upgrade_from_polling_to_websocket(fast: Any) -> None:
    async with aiohttp.ClientSession() as http:
        sid = (await handshake(http, fast.url))["sid"]
        async with http.ws_connect(f"{fast.url}{EIO}&transport=websocket&sid={sid}") as ws:
            await ws.send_str("2probe")
            assert await asyncio.wait_for(ws.receive_str(), 3) == "3probe"
            await ws.send_str("5")
            await ws.send_str("40" + json.dumps({"token": token()}))
            answer = await asyncio.wait_for(ws.receive_str(), 3)
            while answer == "6":  # NOOPs that close the polling side
                answer = await asyncio.wait_for(ws.receive_str(), 3)
            assert answer.startswith("40{"), answer


async def test_payloads_over_the_limit_are_refused(fast: Any) -> None:
    async with aiohttp.ClientSession() as http:
        sid = (await handshake(http, fast.url))["sid"]
        base = f"{fast.url}{EIO}&transport=polling&sid={sid}"
        t0 = time.monotonic()
        async with http.post(base, data="4" + "x" * 9000) as r:
            assert r.status == 413 and (await r.json())["error"] == "too_large"
        assert time.monotonic() - t0 < 2, "at once"
        async with http.get(base) as r:
            assert r.status == 400, "and the session is over"
        url = f"{fast.url}{EIO}&transport=websocket"
        async with http.ws_connect(url) as ws:
            await ws.receive_str()
            await ws.send_str("4" + "x" * 9000)
            msg = await asyncio.wait_for(ws.receive(), 5)
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_connect_to_an_unknown_namespace_is_a_connect_error(fast: Any) -> None:
    url = f"{fast.url}{EIO}&transport=websocket"
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        await ws.receive_str()
        await ws.send_str("40/admin," + json.dumps({"token": token()}))
        answer = await asyncio.wait_for(ws.receive_str(), 3)
        assert answer.startswith("44/admin,") and "message" in json.loads(answer[9:])


async def test_an_unknown_socketio_packet_type_closes_the_connection(fast: Any) -> None:
    url = f"{fast.url}{EIO}&transport=websocket"
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        await ws.receive_str()
        await ws.send_str("40" + json.dumps({"token": token()}))
        assert (await asyncio.wait_for(ws.receive_str(), 3)).startswith("40{")
        await ws.send_str("49")  # no such Socket.IO packet type
        deadline = time.monotonic() + 5
        while True:
            msg = await asyncio.wait_for(ws.receive(), max(deadline - time.monotonic(), 0.1))
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                break


async def test_an_event_before_connect_gets_nothing_and_no_error(fast: Any) -> None:
    url = f"{fast.url}{EIO}&transport=websocket"
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        await ws.receive_str()
        await ws.send_str('42["ack",{"seq":1}]')  # not connected to "/" yet
        await ws.send_str("40" + json.dumps({"token": token()}))
        assert (await asyncio.wait_for(ws.receive_str(), 3)).startswith("40{")
