"""Stock Socket.IO emitters as publishers: python-socketio's write-only RedisManager and Node's
@socket.io/redis-emitter, each in its own OS process, emitting to room `user:<id>` on the
Redis that two `serve` nodes share.

What they must get: every valid emit stored once (the first node to claim it validates it like
POST /api/publish) and delivered with its seq to every tab of the user on every node, in
order; a user with no tab open anywhere finds it in the replay of a later tab; byte-identical
emits within 30 s count once; anything invalid is stored nowhere, reaches nobody, and is
counted in `realtime_channel_dropped`.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from realtime.store.engine import create_engine
from realtime.store.tables import messages
from realtime.web.auth import Auth
from tests.support import SECRET, Client

from .conftest import Node

CLIENT_DIR = Path(__file__).resolve().parents[2] / "client"

# One emit per entry of $EMITS: {"event", "room" (null: no room), "data"}. The process exits
# only after every publish has been written, so "emitted" means "on the channel".
PY_EMITTER = """
import asyncio, json, os
import socketio

url, emits = os.environ["EMIT_REDIS_URL"], json.loads(os.environ["EMITS"])
if os.environ.get("EMIT_ASYNC") == "1":
    async def main():
        mgr = socketio.AsyncRedisManager(url, channel="realtime", write_only=True)
        for e in emits:
            await mgr.emit(e["event"], e["data"], room=e["room"])
    asyncio.run(main())
else:
    mgr = socketio.RedisManager(url, channel="realtime", write_only=True)
    for e in emits:
        mgr.emit(e["event"], e["data"], room=e["room"])
"""

# CommonJS run with cwd=client/, so require() finds client/node_modules. emit() does not wait
# for its PUBLISH; quit() resolves after every queued command has been answered.
NODE_EMITTER = """
const { Emitter } = require("@socket.io/redis-emitter");
const { createClient } = require("redis");
(async () => {
  const client = createClient({ url: process.env.EMIT_REDIS_URL });
  client.on("error", (err) => { console.error(err); process.exit(1); });
  await client.connect();
  const emitter = new Emitter(client);
  for (const e of JSON.parse(process.env.EMITS)) {
    (e.room === null ? emitter : emitter.to(e.room)).emit(e.event, e.data);
  }
  await client.quit();
})().catch((err) => { console.error(err); process.exit(1); });
"""

Emit = dict[str, Any]


def emit(data: dict[str, Any], room: str | None, event: str = "progress_update") -> Emit:
    return {"event": event, "room": room, "data": data}


def progress(job: str, stage: str, pct: int, **extra: Any) -> dict[str, Any]:
    return {"jobId": job, "stage": stage, "progress": pct, **extra}


def pipeline_of(job: str) -> list[dict[str, Any]]:
    """A job's life as a pipeline reports it: every stage, varied optional fields, `type`
    given on some messages and left to the event name on others."""
    return [
        {"type": "progress_update", **progress(job, "url_validation", 2)},
        progress(
            job, "metadata_extraction", 5, videoTitle="Design talk", videoDurationSeconds=1800
        ),
        progress(job, "transcript_generation", 20, message="Transcribing 6:00 of 30:00"),
        {"type": "progress_update", **progress(job, "transcript_generation", 35)},
        progress(job, "content_analysis", 55, message=None),
        progress(job, "mindmap_generation", 75),
        progress(job, "data_storage", 90),
        progress(job, "indexing", 97),
    ]


async def run_emitter(
    kind: str, redis_url: str, emits: list[Emit], *, use_async: bool = False
) -> None:
    env = {**os.environ, "EMIT_REDIS_URL": redis_url, "EMITS": json.dumps(emits)}
    if kind == "python":
        env["EMIT_ASYNC"] = "1" if use_async else "0"
        argv, cwd = [sys.executable, "-c", PY_EMITTER], None
    else:
        node = shutil.which("node")
        assert node, "node is not installed"
        argv, cwd = [node, "-e", NODE_EMITTER], str(CLIENT_DIR)
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, f"{kind} emitter failed: {err.decode()[-2000:]}"


class Tab(Client):
    """A tab that also records events the service never sends (a relayed foreign emit)."""

    def __init__(self) -> None:
        super().__init__()
        self.foreign: list[tuple[str, Any]] = []
        self.sio.on("*", self._foreign)

    async def _foreign(self, event: str, data: Any = None) -> None:
        self.foreign.append((event, data))

    def jobs_seen(self, job: str) -> list[tuple[str, str | None, int | None]]:
        return [
            (n, d.get("stage"), d.get("progress"))
            for n, d in self.events
            if d.get("jobId") == job and "seq" in d and n != "snapshot"
        ]


TabFactory = Callable[[Node, str], Awaitable[Tab]]


def as_emitted(m: dict[str, Any]) -> tuple[str, str | None, int | None]:
    return (m.get("type", "progress_update"), m.get("stage"), m.get("progress"))


async def until_seqs(
    tab: Tab, n: int, timeout: float, what: str, sent: dict[str, list[dict[str, Any]]]
) -> None:
    """Wait for seqs 1..n; on timeout, name the emitted messages the tab never got."""
    try:
        await tab.wait_for(lambda: len(tab.seqs()) >= n, timeout)
    except AssertionError:
        lost = {
            job: [m for m in map(as_emitted, msgs) if m not in tab.jobs_seen(job)]
            for job, msgs in sent.items()
        }
        raise AssertionError(
            f"{what}: after {timeout} s a tab has seqs {tab.seqs()}, expected 1..{n}; "
            f"never delivered: {lost}"
        ) from None


@pytest.fixture
async def open_tab() -> AsyncIterator[TabFactory]:
    tabs: list[Tab] = []
    auth = Auth(SECRET)

    async def make(node: Node, user: str) -> Tab:
        tab = Tab()
        tabs.append(tab)
        await tab.connect(node.url, {"token": auth.issue(user)})
        await tab.replayed()
        return tab

    yield make
    for t in tabs:
        await t.close()


async def stored(pg_url: str, user: str) -> list[dict[str, Any]]:
    """Every message stored for `user`, by seq, as stored."""
    engine = create_engine(pg_url)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(messages.c.seq, messages.c.payload)
                    .where(messages.c.user_id == user)
                    .order_by(messages.c.seq)
                )
            ).all()
    finally:
        await engine.dispose()
    return [{**json.loads(r.payload), "seq": int(r.seq)} for r in rows]


async def dropped_total(http: aiohttp.ClientSession, node: Node) -> float:
    """`realtime_channel_dropped`, all reasons, from the node's /metrics."""
    async with http.get(f"{node.url}/metrics") as r:
        assert r.status == 200
        text = await r.text()
    total = 0.0
    for family in text_string_to_metric_families(text):
        if family.name == "realtime_channel_dropped":
            total += sum(s.value for s in family.samples if s.name.endswith("_total"))
    return total


async def eventually(pred: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await pred():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        await asyncio.sleep(0.1)


@pytest.mark.timeout(120)
async def test_stock_emitters_reach_every_tab_once_in_order_and_invalid_emits_are_dropped(
    nodes: Any, redis_server: Any, pg_url: str, open_tab: TabFactory, tmp_path: Path
) -> None:
    a, b = await nodes(tmp_path / "node-a.log"), await nodes(tmp_path / "node-b.log")
    on_a, on_b = await open_tab(a, "alice"), await open_tab(b, "alice")
    room = "user:alice"
    py_job, js_job, carol_job = "alice-py", "alice-js", "carol-1"
    py_valid, js_valid = pipeline_of(py_job), pipeline_of(js_job)
    carol = [progress(carol_job, "url_validation", 10), progress(carol_job, "indexing", 40)]

    # Both emitters at once, so alice's stream interleaves two channels' messages.
    await asyncio.gather(
        run_emitter("python", redis_server.url, [emit(d, room) for d in py_valid]),
        run_emitter("node", redis_server.url, [emit(d, room) for d in js_valid]),
        run_emitter(
            "python",
            redis_server.url,
            [emit(d, "user:carol") for d in carol],
            use_async=True,
        ),
    )
    n = len(py_valid) + len(js_valid)
    for tab in (on_a, on_b):
        await until_seqs(
            tab, n, 15, "alice's emitted progress", {py_job: py_valid, js_job: js_valid}
        )
    await asyncio.sleep(0.5)  # a second copy of anything would arrive by now
    for tab in (on_a, on_b):
        assert tab.seqs() == list(range(1, n + 1)), "consecutive seqs, each exactly once"
        assert tab.jobs_seen(py_job) == [as_emitted(m) for m in py_valid], "in emitted order"
        assert tab.jobs_seen(js_job) == [as_emitted(m) for m in js_valid], "in emitted order"
    assert on_a.events[2:] == on_b.events[2:], "every node sends the same messages"

    rows = await stored(pg_url, "alice")
    assert [r["seq"] for r in rows] == list(range(1, n + 1)), "stored exactly once each"
    for job, sent in ((py_job, py_valid), (js_job, js_valid)):
        assert [as_emitted(r) for r in rows if r["jobId"] == job] == [as_emitted(m) for m in sent]
    first = next(r for r in rows if r["jobId"] == py_job and r["stage"] == "metadata_extraction")
    assert first["videoTitle"] == "Design talk"

    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {Auth(SECRET).issue('alice')}"}
        async with http.get(f"{b.url}/api/jobs/{js_job}", headers=headers) as r:
            assert r.status == 200
            job = await r.json()
        assert (job["status"], job["stage"], job["progress"]) == ("processing", "indexing", 97)

        # Carol had no tab anywhere when her messages were emitted: they are stored all the
        # same, and a tab she opens later catches up from the store.
        async def carol_stored() -> bool:
            return len(await stored(pg_url, "carol")) == len(carol)

        await eventually(carol_stored, 10, "carol's emits to be stored")
        late = await open_tab(a, "carol")
        snapshot_jobs = {j["jobId"]: j for j in late.of("snapshot")[0]["jobs"]}
        assert snapshot_jobs[carol_job]["progress"] == 40
        assert snapshot_jobs[carol_job]["stage"] == "indexing"
        assert late.of("replay_complete")[0]["toSeq"] == len(carol)

        # Invalid emits, from both kinds of emitter. Each is followed on alice's channel by a
        # valid one, which can only arrive after the invalid one before it was handled.
        before = await dropped_total(http, a) + await dropped_total(http, b)
        bogus = progress(py_job, "indexing", 98)
        invalid = [
            emit(bogus, room, event="hello"),  # not one of the service's events
            emit(progress(py_job, "indexing", 500), room),  # out of range
            emit({**bogus, "seq": 999}, room),  # fields a publisher may not set
            emit(bogus, "lobby"),  # not a user's room
            emit(bogus, None),  # no room at all
        ]
        py_sentinel = progress(py_job, "indexing", 99)
        js_sentinel = {"jobId": js_job, "result": {"mindmapId": "mm_1"}}
        js_invalid = [{**e, "data": {**e["data"], "jobId": js_job}} for e in invalid]
        await asyncio.gather(
            run_emitter("python", redis_server.url, [*invalid, emit(py_sentinel, room)]),
            run_emitter(
                "node",
                redis_server.url,
                [*js_invalid, emit(js_sentinel, room, event="processing_complete")],
            ),
        )
        for tab in (on_a, on_b):
            await until_seqs(
                tab,
                n + 2,
                15,
                "the valid emits after the invalid ones",
                {py_job: [py_sentinel], js_job: [{"type": "processing_complete"}]},
            )
        expected_drops = len(invalid) + len(js_invalid)

        async def counted() -> bool:
            after = await dropped_total(http, a) + await dropped_total(http, b)
            return after - before >= expected_drops

        await eventually(counted, 10, f"{expected_drops} drops in realtime_channel_dropped")
        await asyncio.sleep(0.5)

    for tab in (on_a, on_b):
        assert tab.seqs() == list(range(1, n + 3)), "nothing invalid was delivered"
        assert tab.foreign == [], "no foreign event reached a tab"
        assert tab.jobs_seen(py_job)[-1] == ("progress_update", "indexing", 99)
        assert tab.jobs_seen(js_job)[-1] == ("processing_complete", None, None)
    rows = await stored(pg_url, "alice")
    assert [r["seq"] for r in rows] == list(range(1, n + 3)), "nothing invalid was stored"
    assert all(r.get("progress") != 500 for r in rows)
    assert [r["seq"] for r in await stored(pg_url, "carol")] == [1, 2]


@pytest.mark.timeout(90)
async def test_byte_identical_emits_within_30_seconds_are_one_message(
    nodes: Any, redis_server: Any, pg_url: str, open_tab: TabFactory, tmp_path: Path
) -> None:
    a, b = await nodes(tmp_path / "node-a.log"), await nodes(tmp_path / "node-b.log")
    on_a, on_b = await open_tab(a, "dave"), await open_tab(b, "dave")
    room = "user:dave"
    sent: dict[str, list[dict[str, Any]]] = {}
    for kind, job in (("python", "dave-py"), ("node", "dave-js")):
        first, second = progress(job, "url_validation", 3), progress(job, "url_validation", 8)
        sent[job] = [first, second]
        # The same emitter (one host id / uid) emitting the same object twice: the same bytes
        # on the same channel, as when a pipeline's retry re-sends its last report.
        await run_emitter(
            kind, redis_server.url, [emit(first, room), emit(first, room), emit(second, room)]
        )
    for tab in (on_a, on_b):
        await until_seqs(tab, 4, 15, "dave's emits", sent)
    await asyncio.sleep(1.0)
    for tab in (on_a, on_b):
        assert tab.seqs() == [1, 2, 3, 4]
        for job in ("dave-py", "dave-js"):
            assert [p for _, _, p in tab.jobs_seen(job)] == [3, 8]
    rows = await stored(pg_url, "dave")
    assert [r["seq"] for r in rows] == [1, 2, 3, 4]
    for job in ("dave-py", "dave-js"):
        assert [r["progress"] for r in rows if r["jobId"] == job] == [3, 8]


@pytest.mark.timeout(90)
async def test_when_the_storing_node_dies_the_other_stores_what_was_emitted_meanwhile(
    nodes: Any, redis_server: Any, pg_url: str, open_tab: TabFactory, tmp_path: Path
) -> None:
    """One node holds the ingester lease; kill -9 it and emit at once, before its lease runs
    out: the survivor kept what it heard, takes the lease over and stores it, in order, once."""
    logs = [tmp_path / "node-a.log", tmp_path / "node-b.log"]
    pair = [await nodes(logs[0]), await nodes(logs[1])]

    def holder() -> int | None:
        for i, log in enumerate(logs):
            if "now stores what stock emitters send" in log.read_text():
                return i
        return None

    async def held() -> bool:
        return holder() is not None

    await eventually(held, 10, "a node to take the ingester lease")
    dead = holder()
    assert dead is not None
    survivor = pair[1 - dead]
    tab = await open_tab(survivor, "dora")
    await pair[dead].stop()  # kill -9: its lease stays in Redis until it expires
    during = [progress("dora-1", "url_validation", 5 + i) for i in range(5)]
    await run_emitter("python", redis_server.url, [emit(d, "user:dora") for d in during])
    await until_seqs(tab, 5, 15, "the messages emitted while the lease changed hands", {})
    after = [progress("dora-1", "indexing", 90)]
    await run_emitter("node", redis_server.url, [emit(d, "user:dora") for d in after])
    await until_seqs(tab, 6, 10, "a message emitted after the takeover", {})
    rows = await stored(pg_url, "dora")
    assert [r["progress"] for r in rows] == [5, 6, 7, 8, 9, 90], "in order, each once"
    assert "now stores what stock emitters send" in logs[1 - dead].read_text()
