"""What plain clients (python-socketio's AsyncClient, Node's socket.io-client, socket.io-client
in Chromium, no project code) see when a node drains or cannot serve: they reconnect by
themselves and lose nothing.

- SIGTERM with WebSocket and long-polling clients of all three kinds connected through nginx:
  the node exits 0 within 10 s without a traceback, every client reconnects to the other node
  (with its lastSeq) and gets every message.
- A node that cannot serve (draining, the database not answering) is not a final refusal:
  stock clients keep retrying and get in once it can.
- Every event a connection is sent follows its Socket.IO CONNECT packet on the wire.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio

from realtime.web.auth import Auth
from tests.support import SECRET, free_port, make_settings

from .test_redis_fanout import tracker_for

REPO = Path(__file__).resolve().parents[2]
NODE_CLIENT = REPO / "client" / "node_modules" / "socket.io-client"
PLAYWRIGHT = REPO / "client" / "node_modules" / "playwright-core"
CHROMIUM = Path("/usr/bin/chromium")
BROWSER_DRIVER = Path(__file__).with_name("browser_client.js")
# nginx answers this path itself: the page shares the nodes' origin without reaching them.
BROWSER_PAGE = "/drain-browser.html"

NODE_SCRIPT = """
const { io } = require(process.argv[1]);
const [url, token, transport] = process.argv.slice(2);
let lastSeq = null, epoch = null;
const socket = io(url, {
  transports: [transport],
  reconnectionDelay: 200, reconnectionDelayMax: 1000,
  auth: (cb) => cb(lastSeq === null ? { token } : { token, lastSeq, epoch }),
});
const out = (o) => process.stdout.write(JSON.stringify(o) + "\\n");
socket.on("connect", () => out({ connect: true }));
socket.on("disconnect", (reason) => out({ disconnect: reason }));
socket.on("connect_error", (e) => out({ connect_error: e.message, active: socket.active }));
socket.on("snapshot", (m) => { epoch = m.epoch; if (lastSeq === null) lastSeq = m.lastSeq; });
socket.on("replay_complete", (m) => { epoch = m.epoch; });
socket.on("progress_update", (m) => {
  if (lastSeq === null || m.seq > lastSeq) { lastSeq = m.seq; out({ seq: m.seq }); }
});
setTimeout(() => process.exit(0), 60000);
"""


class PyClient:
    """python-socketio's AsyncClient as anyone would use it: reconnection on, auth a callable."""

    def __init__(self, url: str, token: str, transport: str) -> None:
        self.url, self.token, self.transport = url, token, transport
        self.sio = socketio.AsyncClient(reconnection_delay=0.2, reconnection_delay_max=1)
        self.seqs: list[int] = []
        self.connects = 0
        self.epoch: str | None = None
        self.sio.on("connect", self._connected)
        self.sio.on("snapshot", self._snapshot)
        self.sio.on("progress_update", self._progress)

    async def _connected(self) -> None:
        self.connects += 1

    async def _snapshot(self, m: dict[str, Any]) -> None:
        self.epoch = m["epoch"]

    async def _progress(self, m: dict[str, Any]) -> None:
        if not self.seqs or m["seq"] > self.seqs[-1]:
            self.seqs.append(m["seq"])

    def auth(self) -> dict[str, Any]:
        if not self.seqs:
            return {"token": self.token}
        return {"token": self.token, "lastSeq": self.seqs[-1], "epoch": self.epoch}

    async def start(self) -> None:
        await self.sio.connect(
            self.url, auth=lambda: self.auth(), transports=[self.transport], wait_timeout=10
        )


class NodeClient:
    """Node's socket.io-client in its own process, reporting one JSON object a line on stdout."""

    def __init__(self, url: str, token: str, transport: str) -> None:
        self.transport = transport
        self.argv = ["node", "-e", NODE_SCRIPT, "--", str(NODE_CLIENT), url, token, transport]
        self.seqs: list[int] = []
        self.lines: list[dict[str, Any]] = []
        self.proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(*self.argv, stdout=asyncio.subprocess.PIPE)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = json.loads(raw)
            self.lines.append(line)
            if "seq" in line:
                self.seqs.append(line["seq"])

    @property
    def connects(self) -> int:
        return sum(1 for line in self.lines if line.get("connect"))

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        if self._reader is not None:
            self._reader.cancel()


class BrowserClient(NodeClient):
    """socket.io-client's browser bundle in Debian's Chromium, on a page from nginx's origin."""

    def __init__(self, url: str, token: str, transport: str) -> None:
        super().__init__(url, token, transport)
        bundle = NODE_CLIENT / "dist" / "socket.io.min.js"
        page = url + BROWSER_PAGE
        self.argv = [
            "node",
            str(BROWSER_DRIVER),
            str(PLAYWRIGHT),
            str(bundle),
            page,
            token,
            transport,
        ]

    async def stop(self) -> None:
        # SIGTERM lets the driver close Chromium; killing the driver outright would orphan it.
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        await super().stop()


def nginx_in_front(tmp: Path, ports: list[int], listen: int) -> subprocess.Popen[bytes]:
    nginx = shutil.which("nginx")
    assert nginx, "nginx is not installed (make test installs Debian's nginx)"
    servers = "".join(f"server 127.0.0.1:{p} max_fails=1 fail_timeout=30s; " for p in ports)
    conf = tmp / "nginx.conf"
    conf.write_text(
        textwrap.dedent(
            f"""
            pid {tmp}/nginx.pid; error_log {tmp}/nginx-error.log;
            events {{}}
            http {{
              access_log off;
              client_body_temp_path {tmp}/b; proxy_temp_path {tmp}/p; fastcgi_temp_path {tmp}/f;
              uwsgi_temp_path {tmp}/u; scgi_temp_path {tmp}/s;
              upstream nodes {{ ip_hash; {servers} }}
              server {{
                listen 127.0.0.1:{listen};
                location = {BROWSER_PAGE} {{
                  default_type text/html;
                  return 200 "<!doctype html><meta charset=utf-8><title>drain</title>";
                }}
                location / {{
                  proxy_pass http://nodes;
                  proxy_http_version 1.1;
                  # A browser's Origin carries the port, and the nodes accept only their Host.
                  proxy_set_header Host $http_host;
                  proxy_set_header Upgrade $http_upgrade;
                  proxy_set_header Connection "upgrade";
                  proxy_read_timeout 75s;
                  proxy_next_upstream error timeout http_503;
                }}
              }}
            }}
            """
        )
    )
    return subprocess.Popen(
        [nginx, "-p", str(tmp), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def described(c: Any) -> str:
    """Which client, what it last saw: enough to tell a missed seq from one that never came."""
    events = [e for e in c.lines if "seq" not in e][-6:] if isinstance(c, NodeClient) else "-"
    return f"{type(c).__name__}({c.transport}): {c.connects} connects, {c.seqs[-3:]}, {events}"


@pytest.mark.timeout(120)
async def test_a_sigterm_drain_every_plain_client_recovers_from(
    nodes: Any, pg_url: str, redis_server: Any, tmp_path: Path
) -> None:
    assert NODE_CLIENT.is_dir(), "client/node_modules is missing (make client installs it)"
    assert PLAYWRIGHT.is_dir(), "playwright-core is missing (make client installs it)"
    assert shutil.which(CHROMIUM), "/usr/bin/chromium is missing (apt-get install -y chromium)"
    a, b = await nodes(stderr=tmp_path / "a.log"), await nodes()
    listen = free_port()
    proxy = nginx_in_front(tmp_path, [a.port, b.port], listen)
    url = f"http://127.0.0.1:{listen}"
    token = Auth(SECRET).issue("drained", ttl=600)
    clients: list[Any] = [
        PyClient(url, token, "websocket"),
        PyClient(url, token, "polling"),
        NodeClient(url, token, "websocket"),
        NodeClient(url, token, "polling"),
        BrowserClient(url, token, "websocket"),
        BrowserClient(url, token, "polling"),
    ]
    try:
        await asyncio.sleep(0.5)  # nginx up
        for c in clients:
            await c.start()
        deadline = time.monotonic() + 20  # Chromium's start is most of it
        while not all(c.connects for c in clients):
            assert time.monotonic() < deadline, "\n".join(
                ["did not connect", *map(described, clients)]
            )
            await asyncio.sleep(0.1)
        n = 60
        async with tracker_for(pg_url, redis_server.url) as tracker:

            async def publish() -> None:
                for i in range(n):  # one job per message: no compaction hides a seq
                    await tracker.update_progress(f"job{i}", "indexing", 50, user_id="drained")
                    await asyncio.sleep(0.04)

            publishing = asyncio.create_task(publish())
            await asyncio.sleep(0.8)
            assert a.proc is not None
            t0 = time.monotonic()
            a.proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(a.proc.wait(), 10)
            took = time.monotonic() - t0
            await publishing
        deadline = time.monotonic() + 20
        while not all(c.seqs and c.seqs[-1] == n for c in clients):
            assert time.monotonic() < deadline, "\n".join(map(described, clients))
            await asyncio.sleep(0.1)
        for c in clients:
            assert c.seqs == list(range(c.seqs[0], n + 1)), f"{described(c)}\n{c.seqs}"
            assert c.connects >= 2, f"it did not reconnect: {described(c)}"
        assert a.proc.returncode == 0 and took < 10
        assert "Traceback" not in (tmp_path / "a.log").read_text()
    finally:
        for c in clients:
            if isinstance(c, NodeClient):
                await c.stop()
            else:
                await c.sio.disconnect()
        proxy.send_signal(signal.SIGQUIT)
        proxy.wait(10)


@pytest.mark.timeout(60)
async def test_a_node_that_cannot_serve_is_retried_not_refused(
    start_server: Any, sqlite_url: str
) -> None:
    from realtime.web.keys import STATE

    server = await start_server(make_settings(sqlite_url))
    server.app[STATE].draining = True
    token = Auth(SECRET).issue("patient", ttl=600)
    py = PyClient(server.url, token, "websocket")
    node = NodeClient(server.url, token, "websocket")
    await node.start()
    start = asyncio.create_task(py.start())
    try:
        await asyncio.sleep(2.0)
        assert py.connects + node.connects <= 2 and not py.seqs
        refusals = [line for line in node.lines if "connect_error" in line]
        assert all(line["active"] for line in refusals), "never a final refusal"
        server.app[STATE].draining = False
        deadline = time.monotonic() + 10
        while not (py.sio.connected and node.lines and node.lines[-1].get("connect")):
            assert time.monotonic() < deadline, node.lines[-5:]
            await asyncio.sleep(0.1)
    finally:
        start.cancel()
        await node.stop()
        await py.sio.disconnect()


async def test_events_follow_the_connect_packet_on_the_wire(
    start_server: Any, sqlite_url: str
) -> None:
    server = await start_server(make_settings(sqlite_url))
    token = Auth(SECRET).issue("wire", ttl=600)
    url = f"{server.url}/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        assert (await ws.receive_str()).startswith("0{")
        await ws.send_str("40" + json.dumps({"token": token}))
        frames = [await asyncio.wait_for(ws.receive_str(), 5) for _ in range(3)]
    assert frames[0].startswith("40{"), frames
    assert frames[1].startswith('42["snapshot"') and frames[2].startswith('42["replay_complete"')


async def test_bad_frames_close_the_connection_not_the_http_layer(
    start_server: Any, sqlite_url: str
) -> None:
    server = await start_server(make_settings(sqlite_url))
    token = Auth(SECRET).issue("frames", ttl=600)
    url = f"{server.url}/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as http:
        for garbage in ("abc", "", "4" + "[" * 20_000 + "]" * 20_000):
            async with http.ws_connect(url) as ws:
                await ws.receive_str()  # open
                if garbage.startswith("4["):
                    await ws.send_str("40" + json.dumps({"token": token}))
                    await ws.receive_str()  # CONNECT
                await ws.send_str(garbage if not garbage.startswith("4[") else "42" + garbage[1:])
                deadline = time.monotonic() + 5
                while True:
                    msg = await asyncio.wait_for(
                        ws.receive(), max(deadline - time.monotonic(), 0.1)
                    )
                    if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                        break
                    assert msg.type == aiohttp.WSMsgType.TEXT, msg
        # A huge integer gets the invalid acknowledgement, not silence.
        sio = socketio.AsyncClient(reconnection=False)
        await sio.connect(server.url, auth={"token": token}, transports=["websocket"])
        try:
            answer = await sio.call("ack", {"seq": 10**29}, timeout=5)
            assert answer["error"] == "invalid", answer
            answer = await sio.call("resume", {"lastSeq": 2**63, "epoch": "e"}, timeout=5)
            assert answer["error"] == "invalid", answer
        finally:
            await sio.disconnect()


def test_serve_without_its_database_exits_with_one_line(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "REALTIME_DATABASE_URL": "postgresql+asyncpg://postgres:secret-pw@127.0.0.1:1/none",
        "REALTIME_JWT_SECRET": SECRET,
    }
    done = subprocess.run(
        [sys.executable, "-m", "realtime", "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 1 and len(errors) == 1, done.stderr[-2000:]
    assert "database unavailable" in errors[0] and "secret-pw" not in done.stderr
    assert "Traceback" not in done.stderr
