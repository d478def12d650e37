"""Python publishers: ours (`realtime.Tracker`: store, then Redis) and bare (python-socketio's
`AsyncRedisManager(write_only=True).emit`).

    python -m bench.publish_py --mode ours|bare [--redis URL] --rooms U --rate R (0 = flat out)
                               --duration S [--max M] [--concurrency C] [--check]
                               [--clients N --delivered-keys K1,K2 --max-outstanding D]

Round-robin over the U rooms `user:u<k>`; every message carries its wall-clock send time in ms:
ours as `message` of a `progress_update` (a new job per message, progress 50), bare as
`sentAt`. Ours reads REALTIME_* from the environment (`Tracker.from_env()`); its --redis, when
given, is only where the load generators keep their counts (--max-outstanding), which need not
be the Redis the Tracker publishes to (a cluster run).

stdin/stdout protocol (one JSON object a line): prints {"event":"ready"} once connected (and,
for ours, migrated), waits for `go`, publishes until --duration, --max or a `stop` line, prints
{"event":"published", sent, seconds} as soon as the last call has returned, then
{"event":"done", sent, perRoom, seconds, rate, errors, ...} (with --check: whether the seqs
the tracker returned and the stored streams are gap-free) and exits. A `count` line, at any
time, is answered at once (from the stdin thread, not behind the busy event loop) with
{"event":"count", sent, t, inflightArea}: calls returned so far, the process's monotonic
clock, and the integral of calls in flight over time, so that the orchestrator can tell what
was published, and at what concurrency, between two counts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

_OUT = threading.Lock()  # the stdin thread answers `count` while the loop prints


def out(obj: dict[str, Any]) -> None:
    line = json.dumps(obj) + "\n"
    with _OUT:
        sys.stdout.write(line)
        sys.stdout.flush()


class Progress:
    """Calls returned (`published`: stored, for ours) and calls in flight, integrated over time.
    Read from the stdin thread without a lock: a count a call stale is within the noise."""

    def __init__(self) -> None:
        self.published = 0
        self.inflight = 0
        self.max_inflight = 0
        self._area = 0.0
        self._last = time.monotonic()

    def _advance(self, now: float) -> None:
        self._area += self.inflight * (now - self._last)
        self._last = now

    def begin(self) -> None:
        self._advance(time.monotonic())
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)

    def end(self, ok: bool) -> None:
        self._advance(time.monotonic())
        self.inflight -= 1
        if ok:
            self.published += 1

    def snapshot(self) -> dict[str, Any]:
        now = time.monotonic()
        area = self._area + self.inflight * (now - self._last)
        return {"event": "count", "sent": self.published, "t": now, "inflightArea": area}


def stdin_commands(
    loop: asyncio.AbstractEventLoop, go: asyncio.Event, stop: asyncio.Event, progress: Progress
) -> None:
    def read() -> None:
        for line in sys.stdin:
            cmd = line.strip()
            if cmd == "go":
                loop.call_soon_threadsafe(go.set)
            elif cmd == "stop":
                loop.call_soon_threadsafe(stop.set)
            elif cmd == "count":
                out(progress.snapshot())
        # stdin closed: the orchestrator is gone
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(stop.set)
            loop.call_soon_threadsafe(go.set)

    threading.Thread(target=read, daemon=True).start()


class Outstanding:
    """Flat out, but at most `limit` deliveries ahead of the clients: the load generators keep
    their delivery counts in Redis (`keys`), and the publisher waits while what it has sent,
    times the size of each message's room, exceeds what they have received by more than
    `limit`. The server always has work queued, the queue (and the latency) stays bounded,
    and the publisher burns no CPU the server needs (two cores for everything)."""

    def __init__(self, url: str | None, keys: list[str], room_sizes: list[int], limit: int) -> None:
        from redis import asyncio as aioredis

        self.keys = keys
        self.sizes = room_sizes
        self.limit = limit
        self.redis = aioredis.Redis.from_url(url) if url and keys and limit > 0 else None
        self.lock = asyncio.Lock()
        self.sent = 0  # deliveries the messages sent so far will make
        self.received = 0
        self.pauses = 0
        self.paused_seconds = 0.0

    def count(self, room: int) -> None:
        self.sent += self.sizes[room] if self.sizes else 1

    async def _read(self) -> None:
        assert self.redis is not None
        vals = await self.redis.mget(self.keys)
        self.received = sum(int(v) for v in vals if v is not None)

    async def wait(self, stop: asyncio.Event) -> None:
        if self.redis is None or self.sent - self.received <= self.limit:
            return
        async with self.lock:
            t0 = time.monotonic()
            paused = False
            for _ in range(30_000):  # bounded: at most ~60 s
                await self._read()
                if stop.is_set() or self.sent - self.received <= self.limit:
                    break
                paused = True
                await asyncio.sleep(0.002)
            if paused:
                self.pauses += 1
                self.paused_seconds += time.monotonic() - t0

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()


def room_sizes(clients: int, rooms: int) -> list[int]:
    return (
        [clients // rooms + (1 if k < clients % rooms else 0) for k in range(rooms)]
        if clients
        else []
    )


async def drive(
    send: Callable[[int], Awaitable[None]],
    *,
    rate: float,
    duration: float,
    max_messages: int,
    concurrency: int,
    stop: asyncio.Event,
    backlog: Outstanding,
    progress: Progress,
) -> tuple[int, float, Counter[str], list[str]]:
    """Call send(i) for i = 0, 1, ...: at `rate` a second (0: as fast as `concurrency`
    outstanding calls and the servers' backlog allow) until `duration`, `max_messages` or
    `stop`."""
    errors: Counter[str] = Counter()
    samples: list[str] = []
    started = 0
    t0 = time.monotonic()
    end = t0 + duration

    def more() -> bool:
        return not stop.is_set() and started < max_messages and time.monotonic() < end

    async def one(i: int) -> None:
        progress.begin()
        ok = False
        try:
            await send(i)
            ok = True
        except Exception as exc:
            errors[type(exc).__name__] += 1
            if len(samples) < 5:
                samples.append(f"{type(exc).__name__}: {exc}"[:300])
        finally:
            progress.end(ok)

    if rate <= 0:

        async def worker() -> None:
            nonlocal started
            while more():
                await backlog.wait(stop)
                if not more():
                    break
                i = started
                started += 1
                await one(i)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    else:
        sem = asyncio.Semaphore(concurrency)
        tasks: set[asyncio.Task[None]] = set()

        async def guarded(i: int) -> None:
            try:
                await one(i)
            finally:
                sem.release()

        while more():
            due = min(max_messages, int((time.monotonic() - t0) * rate) + 1)
            while started < due and more():
                await sem.acquire()
                t = asyncio.create_task(guarded(started))
                tasks.add(t)
                t.add_done_callback(tasks.discard)
                started += 1
            delay = t0 + started / rate - time.monotonic()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
        if tasks:
            await asyncio.wait(tasks, timeout=30)
    return started, time.monotonic() - t0, errors, samples


async def run_ours(
    args: argparse.Namespace, go: asyncio.Event, stop: asyncio.Event, progress: Progress
) -> None:
    from sqlalchemy import text

    from realtime import Tracker

    seqs: dict[str, list[int]] = {}
    per_room = [0] * args.rooms
    backlog = outstanding(args, args.redis or os.environ.get("REALTIME_REDIS_URL"))
    async with Tracker.from_env() as tracker:
        out({"event": "ready"})
        await go.wait()

        async def send(i: int) -> None:
            k = i % args.rooms
            backlog.count(k)
            user = f"u{k}"
            sent_at = time.time() * 1000.0
            seq = await tracker.update_progress(
                f"{args.prefix}j{i}",
                "transcript_generation",
                50,
                message=f"{sent_at:.3f}",
                user_id=user,
            )
            per_room[k] += 1
            seqs.setdefault(user, []).append(int(seq))

        sent, seconds, errors, samples = await drive(
            send,
            rate=args.rate,
            duration=args.duration,
            max_messages=args.max,
            concurrency=args.concurrency,
            stop=stop,
            backlog=backlog,
            progress=progress,
        )
        stored = sum(per_room)
        # Before the gap-free check: its queries are not publishing.
        out({"event": "published", "sent": stored, "seconds": seconds})
        result: dict[str, Any] = {
            "event": "done",
            "sent": stored,
            "attempted": sent,
            "perRoom": per_room,
            "seconds": seconds,
            "rate": stored / seconds if seconds else 0.0,
            "errors": dict(errors),
            "errorSamples": samples,
            "database": tracker.ledger.engine.dialect.name,
            "backlogPauses": backlog.pauses,
            "backlogPausedSeconds": round(backlog.paused_seconds, 3),
            "concurrency": args.concurrency,
            "maxInFlight": progress.max_inflight,
        }
        if args.check:
            # 1. The seqs the tracker handed back: distinct and contiguous per user.
            returned_ok = all(
                sorted(v) == list(range(min(v), min(v) + len(v))) for v in seqs.values()
            )
            # 2. The store: per user, the stored seqs are contiguous (a trimmed prefix at most)
            #    and end at the stream's last_seq.
            async with tracker.ledger.engine.connect() as conn:
                rows = (
                    await conn.execute(
                        text(
                            "SELECT m.user_id, MIN(m.seq), MAX(m.seq), COUNT(*), s.last_seq "
                            "FROM messages m JOIN streams s ON s.user_id = m.user_id "
                            "GROUP BY m.user_id, s.last_seq"
                        )
                    )
                ).all()
            bad = [r[0] for r in rows if not (r[3] == r[2] - r[1] + 1 and r[2] == r[4])]
            result["gapFree"] = {
                "returnedSeqsContiguous": returned_ok,
                "streamsChecked": len(rows),
                "streamsWithGaps": bad[:10],
                "storedMessages": int(sum(r[3] for r in rows)),
                "ok": returned_ok and not bad,
            }
    await backlog.close()
    out(result)


async def run_bare(
    args: argparse.Namespace, go: asyncio.Event, stop: asyncio.Event, progress: Progress
) -> None:
    import socketio

    mgr = socketio.AsyncRedisManager(args.redis, write_only=True)
    per_room = [0] * args.rooms
    backlog = outstanding(args, args.redis)
    # write_only managers connect lazily: make the connection before the clock starts.
    await mgr.emit("warmup", {}, room="bench:none")
    out({"event": "ready"})
    await go.wait()

    async def send(i: int) -> None:
        k = i % args.rooms
        backlog.count(k)
        await mgr.emit(
            "progress_update",
            {
                "type": "progress_update",
                "jobId": f"j{i}",
                "stage": "transcript_generation",
                "progress": 50,
                "sentAt": time.time() * 1000.0,
            },
            room=f"user:u{k}",
        )
        per_room[k] += 1

    sent, seconds, errors, samples = await drive(
        send,
        rate=args.rate,
        duration=args.duration,
        max_messages=args.max,
        concurrency=args.concurrency,
        stop=stop,
        backlog=backlog,
        progress=progress,
    )
    n = sum(per_room)
    out({"event": "published", "sent": n, "seconds": seconds})
    await backlog.close()
    with contextlib.suppress(Exception):
        await mgr.redis.aclose()
    out(
        {
            "event": "done",
            "sent": n,
            "attempted": sent,
            "perRoom": per_room,
            "seconds": seconds,
            "rate": n / seconds if seconds else 0.0,
            "errors": dict(errors),
            "errorSamples": samples,
            "backlogPauses": backlog.pauses,
            "backlogPausedSeconds": round(backlog.paused_seconds, 3),
            "concurrency": args.concurrency,
            "maxInFlight": progress.max_inflight,
        }
    )


def outstanding(args: argparse.Namespace, url: str | None) -> Outstanding:
    keys = [k for k in (args.delivered_keys or "").split(",") if k]
    limit = args.max_outstanding if args.rate <= 0 else 0
    return Outstanding(url, keys, room_sizes(args.clients, args.rooms), limit)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.publish_py")
    p.add_argument("--mode", choices=("ours", "bare"), required=True)
    p.add_argument(
        "--redis",
        default=None,
        help="bare: the Redis URL; ours: where --delivered-keys are (default REALTIME_REDIS_URL)",
    )
    p.add_argument("--rooms", type=int, required=True)
    p.add_argument("--rate", type=float, default=0.0)
    p.add_argument("--duration", type=float, required=True)
    p.add_argument("--max", type=int, default=10_000_000)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--prefix", default="b", help="ours: job id prefix")
    p.add_argument("--clients", type=int, default=0, help="clients over the rooms (room sizes)")
    p.add_argument("--delivered-keys", default="", help="Redis keys with the clients' counts")
    p.add_argument(
        "--max-outstanding",
        type=int,
        default=20_000,
        help="flat out: at most this many deliveries ahead of the clients (0: no bound)",
    )
    p.add_argument("--check", action="store_true", help="ours: gap-free check at the end")
    args = p.parse_args()

    async def go_run() -> None:
        go, stop = asyncio.Event(), asyncio.Event()
        progress = Progress()
        stdin_commands(asyncio.get_running_loop(), go, stop, progress)
        if args.mode == "ours":
            await run_ours(args, go, stop, progress)
        else:
            await run_bare(args, go, stop, progress)

    asyncio.run(go_run())


if __name__ == "__main__":
    main()
