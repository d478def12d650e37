"""Decoding what stock emitters put on Redis (the formats are python-socketio's pub/sub `emit`
and @socket.io/redis-emitter's msgpack), and the ingester's lease and order."""

from __future__ import annotations

import asyncio
from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest

from realtime.delivery.ingest import BUFFER_SECONDS, Dropped, Ingest, from_node, from_python


def node_frame(event: str, payload: Any, rooms: list[str]) -> bytes:
    packet = {"type": 2, "data": [event, payload], "nsp": "/"}
    return bytes(msgpack.packb(["emitter", packet, {"rooms": rooms, "except": [], "flags": {}}]))


def py_emit(**kw: Any) -> dict[str, Any]:
    return {"method": "emit", "event": "progress_update", "namespace": "/", **kw}


def test_a_node_emit_to_a_user_room_is_that_users_message_with_its_type() -> None:
    raw = node_frame(
        "progress_update", {"jobId": "j", "stage": "indexing", "progress": 5}, ["user:al"]
    )
    [e] = from_node(raw)
    assert e.user_id == "al"
    assert e.message == {
        "jobId": "j",
        "stage": "indexing",
        "progress": 5,
        "type": "progress_update",
    }


def test_a_python_emit_carries_one_argument_as_itself_or_in_a_list() -> None:
    body = {"jobId": "j", "stage": "indexing", "progress": 5}
    assert from_python(py_emit(data=body, room="user:al"))[0].message["jobId"] == "j"
    assert from_python(py_emit(data=[body], room="user:al"))[0].user_id == "al"


@pytest.mark.parametrize(
    ("emit", "reason"),
    [
        (py_emit(event="hello", data={}, room="user:a"), "foreign event"),
        (py_emit(data={"jobId": "j"}, room=None), "no room"),
        (py_emit(data={"jobId": "j"}, room="lobby"), "not a user room"),
        (py_emit(data=["a", "b"], room="user:a"), "not one object"),
        (py_emit(data={"type": "queue_update"}, room="user:a"), "type differs from event"),
        (py_emit(data={}, room="user:a", namespace="/admin"), "namespace"),
        ({"method": "disconnect", "sid": "x"}, "method"),
    ],
)
def test_what_the_service_cannot_store_is_dropped_with_a_reason(
    emit: dict[str, Any], reason: str
) -> None:
    with pytest.raises(Dropped, match=reason):
        from_python(emit)


def test_node_frames_that_are_not_events_or_not_msgpack_are_dropped() -> None:
    with pytest.raises(Dropped, match="not msgpack"):
        from_node(b"{not msgpack")
    with pytest.raises(Dropped, match="no room"):
        from_node(node_frame("progress_update", {}, []))


class Clock:
    t = 100.0

    def __call__(self) -> float:
        return self.t


async def test_only_the_lease_holder_stores_in_arrival_order_and_a_new_holder_takes_the_buffer() -> (
    None
):
    stored: list[str] = []
    held = asyncio.Event()
    claimed: set[str] = set()

    async def claim(key: str) -> bool:
        if key in claimed:
            return False
        claimed.add(key)
        return True

    async def lease() -> bool:
        return held.is_set()

    async def publish(user: str, message: dict[str, Any], create: bool) -> object:
        stored.append(message["jobId"])
        return None

    clock = Clock()
    ingest = Ingest(claim=claim, lease=lease, publish=publish, dropped=lambda *_: None, clock=clock)
    body = {"stage": "indexing", "progress": 5}

    def put(job: str) -> None:
        raw = node_frame("progress_update", {**body, "jobId": job}, ["user:al"])
        ingest.put(b"socket.io#/#user:al#", raw, lambda: from_node(raw))

    put("old")  # older than the buffer keeps by the time this node takes over
    clock.t += BUFFER_SECONDS + 1
    put("a")
    put("b")
    runner = asyncio.create_task(ingest.run())
    await asyncio.sleep(0.05)
    assert stored == []  # not the holder: nothing stored
    held.set()
    for _ in range(100):
        if len(stored) == 2:
            break
        await asyncio.sleep(0.02)
    put("c")
    put("a")  # byte-identical to the first "a": claimed already
    await asyncio.sleep(0.05)
    runner.cancel()
    assert stored == ["a", "b", "c"]
