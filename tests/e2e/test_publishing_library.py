"""`from realtime import Tracker` in a fresh interpreter: it publishes, and loads no web server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SERVER_SIDE = ("aiohttp", "socketio", "engineio", "prometheus_client")

SCRIPT = """
import asyncio, json, sys
import realtime
from realtime import Tracker
from realtime.config import Settings

async def main():
    settings = Settings(database_url=sys.argv[1], redis_url=sys.argv[2] or None)
    async with Tracker.from_settings(settings) as t:
        job = await t.submit("ann", "https://youtu.be/dQw4w9WgXcQ")
        seq = await t.update_progress(job, "url_validation", 5)
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in {server_side!r})
    print(json.dumps({{"seq": seq, "loaded": loaded}}))

asyncio.run(main())
"""


def run(tmp_path: Path, redis_url: str = "") -> dict[str, object]:
    url = f"sqlite+aiosqlite:///{tmp_path}/realtime.db"
    code = SCRIPT.format(server_side=SERVER_SIDE)
    out = subprocess.run(
        [sys.executable, "-c", code, url, redis_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_publishing_without_redis_loads_no_server_module(tmp_path: Path) -> None:
    got = run(tmp_path)
    assert got == {"seq": 2, "loaded": []}


def test_publishing_through_redis_loads_no_server_module(tmp_path: Path, redis_server) -> None:
    got = run(tmp_path, redis_server.url)
    assert got == {"seq": 2, "loaded": []}
