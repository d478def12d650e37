"""The baseline: bare python-socketio on aiohttp with the stock AsyncRedisManager.

Each connection joins `user:<auth.user>` (no token, no store, nothing else). Publishers reach
it with `AsyncRedisManager(url, write_only=True).emit(...)` on the same Redis.

    python -m bench.bare_server --port P --redis redis://127.0.0.1:R
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from typing import Any

import socketio
from aiohttp import web


def build(redis_url: str) -> web.Application:
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        client_manager=socketio.AsyncRedisManager(redis_url),
        cors_allowed_origins=None,
        ping_interval=20,
        ping_timeout=20,
        logger=False,
        engineio_logger=False,
    )

    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
        user = auth.get("user") if isinstance(auth, dict) else None
        if not isinstance(user, str) or not user:
            return False
        await sio.enter_room(sid, f"user:{user}")
        return True

    sio.on("connect", connect)

    app = web.Application()

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_get("/healthz", healthz)
    sio.attach(app)
    return app


async def serve(port: int, redis_url: str) -> None:
    runner = web.AppRunner(build(redis_url), shutdown_timeout=2.0, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    print(json.dumps({"event": "listening", "port": port}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await asyncio.wait_for(runner.cleanup(), 5)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.bare_server")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--redis", required=True)
    args = p.parse_args()
    asyncio.run(serve(args.port, args.redis))


if __name__ == "__main__":
    main()
