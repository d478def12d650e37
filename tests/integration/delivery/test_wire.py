"""The fast fan-out path: frames written once for many WebSocket connections, in order, and
connections that are polling or upgrading fall back to python-socketio's queue."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

from realtime.tracker import Tracker
from realtime.web.keys import BROADCAST, FANOUT


def emitter(server: Any) -> Any:
    return server.app[FANOUT].emitter.fast


async def test_websocket_clients_get_direct_frames_in_order(
    sqlite_server: Any, connect: Any
) -> None:
    tabs = [await connect(sqlite_server, "wsuser") for _ in range(5)]
    tracker = Tracker(sqlite_server.ledger, sqlite_server.app[BROADCAST])
    n = 200
    await asyncio.gather(
        *(tracker.update_progress(f"j{i}", "indexing", 50, user_id="wsuser") for i in range(n))
    )
    for t in tabs:
        await t.wait_for(lambda t=t: len(t.seqs()) == n, 20)
        assert t.seqs() == list(range(1, n + 1))
    assert emitter(sqlite_server).direct >= n  # most deliveries took the direct path


async def test_upgrading_client_keeps_order_while_messages_flow(
    sqlite_server: Any, connect: Any
) -> None:
    tracker = Tracker(sqlite_server.ledger, sqlite_server.app[BROADCAST])
    n = 300

    async def publish() -> None:
        for i in range(n):
            await tracker.update_progress(f"j{i}", "indexing", 50, user_id="upgrader")
            if i % 10 == 0:
                await asyncio.sleep(0.005)

    clients = []
    task = asyncio.create_task(publish())
    for _ in range(3):
        # polling first, then the upgrade to websocket happens while messages arrive
        clients.append(
            await connect(sqlite_server, "upgrader", transports=["polling", "websocket"])
        )
        await asyncio.sleep(0.05)
    await task
    for c in clients:
        await c.wait_for(lambda c=c: bool(c.seqs()) and c.seqs()[-1] == n, 20)
        seqs = c.seqs()
        assert seqs == sorted(set(seqs)), "increasing, no duplicates"
        start = c.of("replay_complete")[0]["toSeq"]
        assert [s for s in seqs if s > start] == list(range(start + 1, n + 1)), "no gaps"
    assert any(c.sio.eio.current_transport == "websocket" for c in clients)


async def test_closed_websockets_leave_no_reference_cycles(
    sqlite_server: Any, connect: Any
) -> None:
    """A closed connection must be freed by reference counting: what is left in cycles waits
    for a full collection, and with it a whole connection's objects."""
    from aiohttp.web import WebSocketResponse

    from realtime.delivery.wire import TrackingWebSocket

    tabs = [await connect(sqlite_server, "leaver") for _ in range(3)]
    for t in tabs:
        await t.close()
    await asyncio.sleep(0.5)  # the server's side of each socket finishes closing
    # Still open would mean still referenced, and the check below would prove nothing.
    assert sqlite_server.app[FANOUT].connections("leaver") == 0
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        left = [o for o in gc.garbage if isinstance(o, TrackingWebSocket | WebSocketResponse)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert left == []
