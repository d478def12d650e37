# ruff: noqa: ASYNC220, ASYNC221 - set-up steps of a few milliseconds, before any client runs
"""docs/production.md, followed as written: its env file, its Procfile line and its nginx
configuration, taken from the page itself. Two nodes and a publisher under honcho on
PostgreSQL and a private Redis, nginx (TLS, a self-signed certificate) in front, checked with
`nginx -t`, and a WebSocket and a long-polling client through it getting every message."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio

from realtime.web.auth import Auth
from tests.support import API_KEY, SECRET, free_port, fresh_pg_database, stop_process, until

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "production.md"
BIN = Path(sys.executable).parent

PUBLISHER = textwrap.dedent(
    """
    import time
    from realtime import SyncTracker
    with SyncTracker.from_env() as t:
        time.sleep(2)                       # some before the clients connect, some after
        for i in range(30):
            t.update_progress(f"g{i}", "indexing", 50, user_id="guide")
            time.sleep(0.1)
    time.sleep(3600)                        # a long-running worker, as honcho expects
    """
)


def block(name: str) -> str:
    """The fenced block that follows `<!-- guide:NAME -->` in the guide."""
    text = GUIDE.read_text()
    found = re.search(rf"<!-- guide:{name} -->\n```[a-z]*\n(.*?)\n```", text, re.S)
    assert found, f"docs/production.md has no guide:{name} block"
    return found.group(1)


def free_pair() -> int:
    """A port p with p + 1 free too (honcho numbers web.1, web.2 consecutively)."""
    for _ in range(50):
        p = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p + 1))
            except OSError:
                continue
        return p
    raise RuntimeError("no two consecutive free ports")


def self_signed(tmp: Path) -> tuple[Path, Path]:
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def nginx_conf(tmp: Path, base: int, https: int, http: int) -> Path:
    cert, key = self_signed(tmp)
    site = block("nginx")
    site = site.replace("127.0.0.1:8081", f"127.0.0.1:{base}")
    site = site.replace("127.0.0.1:8082", f"127.0.0.1:{base + 1}")
    site = site.replace("listen 443 ssl;", f"listen 127.0.0.1:{https} ssl;")
    site = site.replace("listen 80;", f"listen 127.0.0.1:{http};")
    site = site.replace("/etc/ssl/realtime/fullchain.pem", str(cert))
    site = site.replace("/etc/ssl/realtime/privkey.pem", str(key))
    conf = tmp / "nginx.conf"
    conf.write_text(
        f"pid {tmp}/nginx.pid;\nerror_log {tmp}/nginx-error.log;\n"
        "events {}\n"
        f"http {{\n  access_log {tmp}/nginx-access.log;\n"
        f"  client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy;\n"
        f"  fastcgi_temp_path {tmp}/fcgi; uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;\n"
        f"{textwrap.indent(site, '  ')}\n}}\n"
    )
    return conf


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    stop_process(proc, sig)


@pytest.mark.timeout(180)
async def test_the_production_guide_works_as_written(tmp_path: Path, redis_server: Any) -> None:
    nginx = shutil.which("nginx")
    assert nginx, "nginx is not installed (make test installs Debian's nginx)"
    assert block("procfile") in (REPO / "Procfile").read_text(), "the guide shows the Procfile"
    base, https, http = free_pair(), free_port(), free_port()
    async with fresh_pg_database() as pg_url:
        env_text = block("env")
        env_text = re.sub(r"REALTIME_DATABASE_URL=.*", f"REALTIME_DATABASE_URL={pg_url}", env_text)
        env_text = re.sub(
            r"REALTIME_REDIS_URL=.*", f"REALTIME_REDIS_URL={redis_server.url}", env_text
        )
        env_text = re.sub(r"REALTIME_JWT_SECRET=.*", f"REALTIME_JWT_SECRET={SECRET}", env_text)
        env_text = re.sub(r"REALTIME_API_KEY=.*", f"REALTIME_API_KEY={API_KEY}", env_text)
        (tmp_path / "realtime.env").write_text(env_text + "\n")
        (tmp_path / "publisher.py").write_text(PUBLISHER)
        procfile = block("procfile") + "\npublisher: python publisher.py\n"
        (tmp_path / "Procfile").write_text(procfile)
        conf = nginx_conf(tmp_path, base, https, http)
        checked = subprocess.run(
            [nginx, "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True
        )
        assert checked.returncode == 0, checked.stderr
        # The guide: migrate once per release, then the Procfile with the venv on the PATH.
        env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "PYTHONPATH": str(REPO)}
        for line in env_text.splitlines():
            if "=" in line and not line.startswith("#"):
                k, _, v = line.partition("=")
                env[k] = v
        migrated = subprocess.run(
            [str(BIN / "python"), "-m", "realtime", "migrate"],
            env=env,
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
        )
        assert migrated.returncode == 0 and "database schema" in migrated.stdout, migrated
        honcho_env = {k: v for k, v in env.items() if not k.startswith("REALTIME_")}
        log = (tmp_path / "honcho.log").open("wb")
        honcho = subprocess.Popen(
            [
                str(BIN / "honcho"),
                "start",
                "-e",
                "realtime.env",
                "-c",
                "web=2,publisher=1",
                "-p",
                str(base),
            ],
            cwd=tmp_path,
            env=honcho_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        proxy = subprocess.Popen(
            [nginx, "-p", str(tmp_path), "-c", str(conf), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        clients: list[socketio.AsyncClient] = []
        try:
            url = f"https://127.0.0.1:{https}"
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as s:

                async def ready() -> bool:
                    for port in (base, base + 1):
                        try:
                            async with s.get(f"http://127.0.0.1:{port}/readyz") as r:
                                if r.status != 200:
                                    return False
                        except aiohttp.ClientError:
                            return False
                    async with s.get(f"{url}/readyz") as r:
                        return r.status == 200

                await until(ready, 40, "both nodes ready behind nginx: " + str(tmp_path))
                async with s.get(f"http://127.0.0.1:{http}/readyz", allow_redirects=False) as r:
                    assert r.status == 301 and r.headers["Location"].startswith("https://")
            token = Auth(SECRET).issue("guide", ttl=600)
            seen: dict[str, list[int]] = {"websocket": [], "polling": []}
            for transport in seen:
                c = socketio.AsyncClient(ssl_verify=False, reconnection=False)

                @c.on("progress_update")
                async def got(data: dict[str, Any], t: str = transport) -> None:
                    seen[t].append(data["seq"])

                await c.connect(url, auth={"token": token}, transports=[transport], wait_timeout=15)
                clients.append(c)

            async def all_seen() -> bool:
                return all(sorted(v) == list(range(1, 31)) for v in seen.values())

            await until(all_seen, 40, f"every message on both transports: {seen}")
            assert all(v == sorted(v) for v in seen.values()), seen
        finally:
            for c in clients:
                await c.disconnect()
            stop(proxy, signal.SIGQUIT)
            stop(honcho)
            log.close()
