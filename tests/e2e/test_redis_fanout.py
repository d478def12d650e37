"""Several nodes over a private Redis: fan-out, Redis restarts and stalls, concurrent publishers.

The follower's poll interval is set very long here, so delivery can only come from Redis or
from the catch-up the node runs when its subscription is confirmed again.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

from aiohttp import ClientSession

from realtime.broadcast.channels import user_channel
from realtime.broadcast.redis import RedisBroadcast, emit_message
from realtime.broadcast.signing import channel_key
from realtime.store.engine import create_engine
from realtime.store.ledger import Ledger
from realtime.tracker import Tracker
from tests.services import StallingProxy
from tests.support import SECRET, make_settings

SLOW_FOLLOW = 600.0


async def ready(http: ClientSession, server: Any) -> int:
    async with http.get(f"{server.url}/readyz") as r:
        return r.status


async def wait_ready(http: ClientSession, server: Any, want: int, timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if await ready(http, server) == want:
            return time.monotonic() - start
        await asyncio.sleep(0.1)
    raise AssertionError(f"/readyz never became {want}")


def tracker_for(url: str, redis_url: str, *, signed: bool = True) -> Tracker:
    """A Tracker on `url` publishing through `redis_url`, signing with the test secret (as a
    publisher sharing the deployment's secret does) unless `signed` is False."""
    engine = create_engine(url)
    key = channel_key(SECRET) if signed else None
    return Tracker(
        Ledger(engine, history_size=1000, history_ttl=3600),
        RedisBroadcast(redis_url, key=key),
        owns_engine=True,
    )


PUBLISHER = """
import asyncio, sys
from realtime.tracker import Tracker
async def main(n, job):
    async with Tracker.from_env() as t:
        for i in range(n):
            await t.update_progress(job, "indexing", min(i, 100), user_id="many")
asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
"""


async def test_publish_from_another_process_reaches_both_nodes(
    start_server: Any, pg_url: str, redis_server: Any, connect: Any
) -> None:
    settings = make_settings(pg_url, redis_url=redis_server.url, follow_interval=SLOW_FOLLOW)
    a, b = await start_server(settings), await start_server(settings)
    on_a, on_b = await connect(a, "many"), await connect(b, "many")
    env = {**os.environ, "REALTIME_DATABASE_URL": pg_url, "REALTIME_REDIS_URL": redis_server.url}
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", PUBLISHER, "40", f"job{i}", env=env
        )
        for i in range(4)
    ]
    for p in procs:
        assert await asyncio.wait_for(p.wait(), 90) == 0
    for c in (on_a, on_b):
        await c.wait_for(lambda c=c: len(c.seqs()) == 160, 10)
        assert c.seqs() == list(range(1, 161))


async def test_redis_restart_loses_nothing_and_readiness_follows(
    start_server: Any, pg_url: str, redis_server: Any, connect: Any
) -> None:
    settings = make_settings(pg_url, redis_url=redis_server.url, follow_interval=SLOW_FOLLOW)
    a, b = await start_server(settings), await start_server(settings)
    clients = [await connect(a, "steady"), await connect(b, "steady"), await connect(b, "steady")]
    publish_times: list[float] = []
    async with ClientSession() as http:
        await wait_ready(http, a, 200, 10)
        async with tracker_for(pg_url, redis_server.url) as tracker:

            async def publish(n: int) -> None:
                for i in range(n):
                    t0 = time.monotonic()
                    await tracker.update_progress("j", "indexing", min(i, 100), user_id="steady")
                    publish_times.append(time.monotonic() - t0)
                    await asyncio.sleep(0.05)

            task = asyncio.create_task(publish(80))  # ~4 s at a steady rate
            await asyncio.sleep(1.0)
            redis_server.stop()
            await wait_ready(http, a, 503, 6)
            await asyncio.sleep(1.5)
            redis_server.start()
            back = time.monotonic()
            await task
            for c in clients:
                await c.wait_for(lambda c=c: len(c.seqs()) == 80, 10)
            caught_up = time.monotonic() - back
            await wait_ready(http, a, 200, 10)
    for c in clients:
        assert c.seqs() == list(range(1, 81))  # nothing lost, nothing twice, in order
    assert max(publish_times) < 2.0
    assert caught_up < 5.0 + 2.0  # the last messages were published after Redis came back


async def test_stalled_redis_link_is_noticed_and_recovered(
    start_server: Any, sqlite_url: str, redis_server: Any, connect: Any
) -> None:
    proxy = StallingProxy(redis_server.port)
    await proxy.start()
    try:
        via_proxy = f"redis://127.0.0.1:{proxy.port}/0"
        node = await start_server(
            make_settings(sqlite_url, redis_url=via_proxy, follow_interval=SLOW_FOLLOW)
        )
        client = await connect(node, "stall")
        async with ClientSession() as http, tracker_for(sqlite_url, redis_server.url) as tracker:
            await wait_ready(http, node, 200, 10)
            await tracker.update_progress("s", "indexing", 1, user_id="stall")
            await client.wait_for(lambda: client.seqs() == [1], 5)
            proxy.stall()
            noticed = await wait_ready(http, node, 503, 10)
            for p in range(2, 12):
                await tracker.update_progress("s", "indexing", p, user_id="stall")
            await asyncio.sleep(max(0.0, 10 - noticed))
            proxy.resume()
            await client.wait_for(lambda: len(client.seqs()) == 11, 10)
            await wait_ready(http, node, 200, 10)
        assert client.seqs() == list(range(1, 12))
        assert noticed < 8
    finally:
        await proxy.close()


async def test_the_channel_is_checked_against_the_store(
    start_server: Any, sqlite_url: str, redis_server: Any, connect: Any
) -> None:
    """A forged seq moves no cursor, a foreign or room-less emit reaches nobody, an unsigned
    publisher still gets through (from the store), and a forged payload is never sent."""
    import redis.asyncio as aioredis

    from realtime.store.stream import Stored
    from realtime.web.keys import METRICS

    settings = make_settings(sqlite_url, redis_url=redis_server.url, follow_interval=SLOW_FOLLOW)
    node = await start_server(settings)
    tab = await connect(node, "victim")
    other = await connect(node, "bystander")
    raw = aioredis.Redis.from_url(redis_server.url)
    forged = {
        "type": "progress_update",
        "jobId": "x",
        "stage": "indexing",
        "progress": 99,
        "message": "forged",
        "seq": 30,
        "ts": "2030-01-01T00:00:00.000Z",
    }
    try:
        async with tracker_for(sqlite_url, redis_server.url) as signed:
            for i in range(5):
                await signed.update_progress(f"s{i}", "indexing", 10, user_id="victim")
            await tab.wait_for(lambda: tab.seqs() == [1, 2, 3, 4, 5])
            # Forged: a seq far ahead, a wrong seal, no room, a foreign event; on the
            # victim's own channel and on the shared one.
            fake = emit_message(Stored("victim", 30, forged), "intruder")
            for channel in (user_channel("victim"), "realtime"):
                await raw.publish(channel, codec_dumps(fake))
                await raw.publish(channel, b"rt1 " + b"0" * 16 + codec_dumps(fake))
                await raw.publish(channel, codec_dumps({**fake, "room": None}))
                await raw.publish(channel, codec_dumps({**fake, "event": "evil", "room": None}))
                await raw.publish(
                    channel, codec_dumps({"method": "disconnect", "sid": "x", "host_id": "i"})
                )
            await asyncio.sleep(0.5)
            for i in range(5, 8):  # the real seqs 6-8 still arrive
                await signed.update_progress(f"s{i}", "indexing", 10, user_id="victim")
        async with tracker_for(sqlite_url, redis_server.url, signed=False) as unsigned:
            await unsigned.update_progress("u", "indexing", 10, user_id="victim")
        await tab.wait_for(lambda: tab.seqs()[-1:] == [9])
        assert tab.seqs() == list(range(1, 10)), "nothing skipped, nothing forged"
        assert all(m.get("message") != "forged" for m in tab.of("progress_update"))
        late = await connect(node, "victim", lastSeq=5, epoch=tab.of("snapshot")[0]["epoch"])
        assert late.seqs() == [6, 7, 8, 9], "a tab that joins later misses nothing"
        assert other.seqs() == [] and other.of("evil") == []
        metrics = node.app[METRICS]
        dropped = metrics.channel_dropped.labels("not a stream message")._value.get()
        assert dropped >= 2 and metrics.channel_unsigned._value.get() >= 2
    finally:
        await raw.aclose()


def codec_dumps(message: dict[str, Any]) -> bytes:
    from realtime import codec

    return codec.dumps_bytes(message)
