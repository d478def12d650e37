"""The Redis subscriber against a real (private) redis-server: per-user channels subscribed in
batches, catch-up once a subscription is confirmed, and nothing heard for users not held."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from redis import asyncio as aioredis

from realtime.broadcast.channels import user_channel
from realtime.broadcast.redis import RedisBroadcast
from realtime.delivery.health import NodeState
from realtime.delivery.subscriber import StreamRedisManager
from realtime.metrics import Metrics
from realtime.store.stream import Stored
from tests.support import until


class Recorder:
    """Stands in for Fanout: what the subscriber hands on."""

    def __init__(self) -> None:
        self.hints: list[tuple[str, int]] = []

    async def deliver(self, user_id: str, payload: dict[str, Any]) -> None:
        self.hints.append((user_id, payload["seq"]))

    async def deliver_from_store(self, user_id: str, seq: int) -> None:
        self.hints.append((user_id, seq))


async def subscribe_calls(r: aioredis.Redis) -> int:
    stats = await r.info("commandstats")
    return int(stats.get("cmdstat_subscribe", {}).get("calls", 0))


async def test_five_thousand_users_arriving_at_once_are_a_few_subscribe_commands(
    redis_server: Any,
) -> None:
    manager = StreamRedisManager(redis_server.url, state=NodeState(), metrics=Metrics())
    caught_up: list[str] = []

    async def catch_up(users: list[str]) -> None:
        caught_up.extend(users)

    manager.catch_up_users = catch_up
    manager.fanout = Recorder()  # type: ignore[assignment]
    r = aioredis.Redis.from_url(redis_server.url)
    listener = asyncio.create_task(manager._thread())
    try:
        await until(lambda: asyncio.sleep(0, manager.listening()), 5, "subscribed")
        before = await subscribe_calls(r)
        users = [f"storm{i}" for i in range(5000)]
        for u in users:  # a reconnect storm: every first connection of a user at once
            manager.want(u)

        async def all_caught_up() -> bool:
            return len(caught_up) == len(users)

        await until(all_caught_up, 10, "every user caught up after its subscription")
        assert sorted(caught_up) == sorted(users)
        assert await subscribe_calls(r) - before <= 6  # 1,000 channels a command
        counts = await r.pubsub_numsub(user_channel("storm0"), user_channel("storm4999"))
        assert [n for _, n in counts] == [1, 1]
        for u in users[:4000]:
            manager.unwant(u)

        async def unsubscribed() -> bool:
            [(_, n)] = await r.pubsub_numsub(user_channel("storm0"))
            return int(n) == 0

        await until(unsubscribed, 5, "the channels of users who left are unsubscribed")
    finally:
        listener.cancel()
        with contextlib.suppress(BaseException):
            await listener
        await r.aclose()


async def test_a_node_hears_the_users_it_holds_and_nothing_of_the_others(
    redis_server: Any,
) -> None:
    manager = StreamRedisManager(redis_server.url, state=NodeState(), metrics=Metrics())
    recorder = Recorder()
    manager.fanout = recorder  # type: ignore[assignment]
    manager.want("held")
    listener = asyncio.create_task(manager._thread())
    publisher = RedisBroadcast(redis_server.url)
    try:
        await until(lambda: asyncio.sleep(0, manager.listening()), 5, "subscribed")
        payload = {"type": "progress_update", "jobId": "j", "seq": 1}
        await publisher.send(
            [Stored("other", 1, payload), Stored("held", 1, payload), Stored("x", 1, payload)]
        )

        async def heard() -> bool:
            return bool(recorder.hints)

        await until(heard, 5, "the held user's message")
        await asyncio.sleep(0.2)
        assert recorder.hints == [("held", 1)]  # unsigned here: a hint to read the store
    finally:
        listener.cancel()
        with contextlib.suppress(BaseException):
            await listener
        await publisher.close()


async def test_a_user_leaving_and_coming_back_at_once_keeps_its_subscription(
    redis_server: Any,
) -> None:
    """A page reload: the last connection goes, a new one comes, often before Redis has
    answered the UNSUBSCRIBE. That answer is ours, not a reason to re-subscribe everything."""
    manager = StreamRedisManager(redis_server.url, state=NodeState(), metrics=Metrics())
    manager.fanout = Recorder()  # type: ignore[assignment]
    r = aioredis.Redis.from_url(redis_server.url)
    listener = asyncio.create_task(manager._thread())
    try:
        await until(lambda: asyncio.sleep(0, manager.listening()), 5, "subscribed")
        manager.want("reloader")
        for i in range(30):
            await asyncio.sleep(0.01)
            manager.unwant("reloader")
            for _ in range(i % 3 + 1):  # the UNSUBSCRIBE goes out, its answer not yet read
                await asyncio.sleep(0)
            manager.want("reloader")

        async def subscribed() -> bool:
            [(_, n)] = await r.pubsub_numsub(user_channel("reloader"))
            return int(n) == 1

        await until(subscribed, 5, "the user's channel subscribed")
        await asyncio.sleep(0.3)
        assert [link.reconnects for link in manager.links] == [0]
        assert manager.listening()
    finally:
        listener.cancel()
        with contextlib.suppress(BaseException):
            await listener
        await r.aclose()


async def test_a_half_open_link_is_given_up_while_it_stays_silent(redis_server: Any) -> None:
    """The network path dies without a FIN or RST: the subscription must be abandoned (and
    retried) while it is still silent, not only once bytes flow again."""
    from tests.services import StallingProxy

    proxy = StallingProxy(redis_server.port)
    await proxy.start()
    manager = StreamRedisManager(
        f"redis://127.0.0.1:{proxy.port}/0", state=NodeState(), metrics=Metrics()
    )
    manager.fanout = Recorder()  # type: ignore[assignment]
    listener = asyncio.create_task(manager._thread())
    try:
        await until(lambda: asyncio.sleep(0, manager.listening()), 5, "subscribed")
        proxy.stall()

        async def given_up() -> bool:
            return manager.links[0].reconnects >= 1 and not manager.links[0].alive

        await until(given_up, 10, "the silent link abandoned")
        proxy.resume()
        await until(lambda: asyncio.sleep(0, manager.listening()), 10, "subscribed again")
    finally:
        listener.cancel()
        with contextlib.suppress(BaseException):
            await listener
        proxy.resume()


async def test_a_redis_on_a_unix_socket_works_for_listener_and_publisher(tmp_path: Any) -> None:
    import shutil
    import subprocess

    from tests.support import stop_process

    server = shutil.which("redis-server")
    assert server, "redis-server is not installed (make test installs it)"
    sock = tmp_path / "redis.sock"
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before anything runs
        [server, "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    url = f"unix://{sock}"
    manager = StreamRedisManager(url, state=NodeState(), metrics=Metrics())
    recorder = Recorder()
    manager.fanout = recorder  # type: ignore[assignment]
    manager.want("held")
    listener = asyncio.create_task(manager._thread())
    publisher = RedisBroadcast(url)
    try:
        await until(lambda: asyncio.sleep(0, manager.listening()), 10, "subscribed")
        payload = {"type": "progress_update", "jobId": "j", "seq": 1}
        await publisher.send([Stored("held", 1, payload)])

        async def heard() -> bool:
            return recorder.hints == [("held", 1)]

        await until(heard, 5, "the message over the unix socket")
    finally:
        listener.cancel()
        with contextlib.suppress(BaseException):
            await listener
        await publisher.close()
        stop_process(proc)
