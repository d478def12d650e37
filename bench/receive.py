"""`python -m bench.receive`: server CPU per message on ours' receive path, before delivery.

A real `StreamRedisManager` (the node's Redis listener) subscribed to 100 users' channels,
with a Fanout that does nothing, hears N sealed messages that a `RedisBroadcast` in another
process publishes (batches of 500, as a busy publisher does). This process's CPU over the run,
divided by N, is what receiving costs: reading from Redis, parsing, checking the seal,
decoding, dispatching to the user. Whatever delivery then costs comes on top.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from realtime.delivery.health import NodeState
from realtime.delivery.subscriber import StreamRedisManager
from realtime.metrics import Metrics

SECRET = "bench-receive-secret-0123456789-abcdef"
USERS = 100

PUBLISHER = """
import asyncio, sys
from realtime.broadcast.redis import RedisBroadcast
from realtime.broadcast.signing import channel_key
from realtime.store.stream import Stored
url, n, users, secret = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
async def main():
    b = RedisBroadcast(url, key=channel_key(secret))
    p = {"type": "progress_update", "jobId": "job-1", "stage": "transcript_generation",
         "progress": 40, "message": None, "estimatedCompletion": "2026-12-02T07:00:00.000Z",
         "ts": "2026-12-02T06:22:30.268Z"}
    for i in range(0, n, 500):
        await b.send([Stored(f"u{j % users}", j + 1, {**p, "seq": j + 1})
                      for j in range(i, min(i + 500, n))])
    await b.close()
asyncio.run(main())
"""


class NoDelivery:
    def __init__(self, n: int) -> None:
        self.received = 0
        self.n = n
        self.all = asyncio.Event()

    async def deliver(self, user_id: str, payload: dict[str, Any]) -> None:
        self.received += 1
        if self.received >= self.n:
            self.all.set()

    async def deliver_from_store(self, user_id: str, seq: int) -> None:
        await self.deliver(user_id, {})


async def measure(url: str, n: int) -> dict[str, Any]:
    from realtime.broadcast.signing import channel_key

    manager = StreamRedisManager(url, state=NodeState(), metrics=Metrics(), key=channel_key(SECRET))
    sink = NoDelivery(n)
    manager.fanout = sink  # type: ignore[assignment]
    for u in range(USERS):
        manager.want(f"u{u}")
    listener = asyncio.create_task(manager._thread())
    try:
        deadline = time.monotonic() + 10
        while not manager.listening():
            if time.monotonic() > deadline:
                raise SystemExit("receive: not subscribed within 10 s")
            await asyncio.sleep(0.05)
        pub = await asyncio.create_subprocess_exec(
            sys.executable, "-c", PUBLISHER, url, str(n), str(USERS), SECRET
        )
        c0, t0 = time.process_time(), time.monotonic()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(sink.all.wait(), 120)
        c1, t1 = time.process_time(), time.monotonic()
        await pub.wait()
    finally:
        listener.cancel()
        with contextlib.suppress(BaseException):  # cancelled on purpose
            await listener
    return {
        "messages": n,
        "received": sink.received,
        "wallSeconds": t1 - t0,
        "cpuUsPerMessage": (c1 - c0) / max(sink.received, 1) * 1e6,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.receive", description=__doc__)
    p.add_argument("--redis", required=True, help="redis:// URL (a private server)")
    p.add_argument("--messages", type=int, default=100_000)
    p.add_argument("--json", type=Path, help="write the result here")
    args = p.parse_args(argv)
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    result = asyncio.run(measure(args.redis, args.messages))
    if args.json:
        args.json.write_text(json.dumps(result))
    print(
        f"receive path: {result['received']:,} messages, "
        f"{result['cpuUsPerMessage']:.1f} us of CPU per message",
        flush=True,
    )
    return 0 if result["received"] == args.messages else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    raise SystemExit(main())
