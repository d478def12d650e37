"""QueueNotifier: stores and sends the `queue_update`s of queued jobs whose position changed or
whose estimatedStart moved by more than max(10 s, 25 %).

One pass costs a bounded number of round trips, whatever the queue's length:
- one ordered scan of the queue (job id, user, updated_seq) gives every position;
- the job's last stored queue_update is read (one query per 500 jobs) only for jobs this
  notifier has not seen since their last message, so a steady queue costs one scan;
- the updates are written in short transactions of about CHUNK jobs, each: one multi-row
  ensure of the users' streams, one select of those jobs, one `stream.append` (an UPDATE and a
  multi-row INSERT) per user, one executemany UPDATE of the jobs.

Several notifiers (every worker process, every server) may run at once. Each write
transaction re-reads the jobs and writes only those still queued whose `updated_seq` is the
one the pass decided on: a job that got any message meanwhile (another notifier's update, a
claim, a cancel) is left to the next pass, so there are no duplicates and no stale position
overwrites a fresher one. Bursts coalesce: a pass handles whatever changed since the last.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from . import eta, stream
from .broadcast import Broadcast
from .db import jobs as jobs_t
from .jobs import Status, iso, parse_iso
from .ledger import Ledger
from .pipeline import queue_lock
from .stream import Stored

log = logging.getLogger(__name__)

# Jobs per write transaction: small enough that a claim waits only milliseconds for it.
CHUNK = 500
_READ_CHUNK = 500


@dataclass(frozen=True)
class _Seen:
    """What the job's last stored message says, as of `updated_seq`."""

    updated_seq: int
    is_queue_update: bool
    position: int | None
    start: float | None


@dataclass(frozen=True)
class _Due:
    job_id: str
    user_id: str
    updated_seq: int
    position: int
    start: float | None  # estimatedStart, epoch seconds


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait for `event` at most `timeout` seconds; True when it is set. (Not asyncio.wait_for:
    on Python 3.11 it swallows a cancellation that arrives as the event is set, and the task
    never ends.)"""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()
    return event.is_set()


def _seen(updated_seq: int, raw: str | None) -> _Seen:
    m = json.loads(raw) if raw else None
    if not m or m.get("type") != "queue_update":
        return _Seen(updated_seq, False, None, None)
    return _Seen(updated_seq, True, m.get("position"), parse_iso(m.get("estimatedStart")))


class QueueNotifier:
    """`await notifier.run()` in a task; set `notifier.wake` to run a pass early."""

    def __init__(
        self,
        ledger: Ledger,
        broadcast: Broadcast,
        *,
        interval: float = 0.5,
        chunk: int = CHUNK,
    ) -> None:
        self.ledger = ledger
        self.broadcast = broadcast
        self.interval = interval
        self.chunk = chunk
        self.wake = asyncio.Event()
        self.last_pass_seconds = 0.0
        self._seen: dict[str, _Seen] = {}

    async def run(self) -> None:
        """Pass after pass until cancelled; a slow pass (a huge queue) stretches the pause."""
        while True:
            started = time.monotonic()
            try:
                await self.pass_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a database hiccup: try again next tick
                log.warning("queue notifier: %s", exc)
            self.last_pass_seconds = time.monotonic() - started
            await wait_event(self.wake, max(self.interval, self.last_pass_seconds))
            self.wake.clear()

    async def pass_once(self) -> int:
        """One pass over the queue; returns how many queue_updates it stored."""
        now = self.ledger.clock()
        async with self.ledger.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(jobs_t.c.job_id, jobs_t.c.user_id, jobs_t.c.updated_seq)
                    .where(jobs_t.c.status == Status.QUEUED.value)
                    .order_by(jobs_t.c.submitted_at, jobs_t.c.job_id)
                )
            ).all()
            if not rows:
                self._seen.clear()
                return 0
            await self._refresh_seen(conn, rows)
            waits = (await self.ledger.queue.outlook(conn)).waits(len(rows))
        self._seen = {r.job_id: self._seen[r.job_id] for r in rows if r.job_id in self._seen}
        due: list[_Due] = []
        for i, r in enumerate(rows):
            wait = waits[i] if waits is not None else None
            start = now + wait if wait is not None else None
            seen = self._seen.get(r.job_id)
            if seen is None or seen.updated_seq != r.updated_seq:
                continue  # changed under us: next pass
            position = i + 1
            if (
                not seen.is_queue_update
                or seen.position != position
                or eta.start_moved(seen.start, start, wait)
            ):
                due.append(_Due(r.job_id, r.user_id, r.updated_seq, position, start))
        stored = 0
        for batch in self._batches(due):
            out = await self._store(batch, len(rows))
            stored += len(out)
            if out:
                await self.broadcast.send(out)
        return stored

    async def _refresh_seen(self, conn: AsyncConnection, rows: Sequence[Any]) -> None:
        stale = [
            r.job_id
            for r in rows
            if (s := self._seen.get(r.job_id)) is None or s.updated_seq != r.updated_seq
        ]
        for i in range(0, len(stale), _READ_CHUNK):
            found = await conn.execute(
                select(jobs_t.c.job_id, jobs_t.c.updated_seq, jobs_t.c.last_message).where(
                    jobs_t.c.job_id.in_(stale[i : i + _READ_CHUNK])
                )
            )
            for job_id, seq, raw in found:
                self._seen[job_id] = _seen(int(seq), raw)

    def _batches(self, due: list[_Due]) -> list[list[_Due]]:
        """About `chunk` jobs per batch, a user's jobs never split (one append per user)."""
        by_user: dict[str, list[_Due]] = defaultdict(list)
        for d in due:
            by_user[d.user_id].append(d)
        batches: list[list[_Due]] = []
        current: list[_Due] = []
        for items in by_user.values():
            if current and len(current) + len(items) > self.chunk:
                batches.append(current)
                current = []
            current.extend(items)
        if current:
            batches.append(current)
        return batches

    async def _store(self, batch: list[_Due], length: int) -> list[Stored]:
        users = sorted({d.user_id for d in batch})
        async with self.ledger.engine.begin() as conn:
            now = self.ledger.clock()
            await queue_lock(conn, exclusive=True)
            await stream.ensure_many(conn, users, now)
            q = select(jobs_t.c.job_id, jobs_t.c.updated_seq).where(
                jobs_t.c.job_id.in_([d.job_id for d in batch]),
                jobs_t.c.status == Status.QUEUED.value,
            )
            if conn.dialect.name == "postgresql":
                # A job a cancel is holding right now is skipped, not waited for.
                q = q.order_by(jobs_t.c.job_id).with_for_update(skip_locked=True)
            current = {job_id: int(seq) for job_id, seq in await conn.execute(q)}
            by_user: dict[str, list[tuple[_Due, dict[str, Any]]]] = defaultdict(list)
            for d in batch:
                if current.get(d.job_id) != d.updated_seq:
                    continue
                wait = round(max(d.start - now, 0.0), 3) if d.start is not None else None
                payload = {
                    "type": "queue_update",
                    "jobId": d.job_id,
                    "position": d.position,
                    "queueLength": length,
                    "estimatedWaitSeconds": wait,
                    "estimatedStart": iso(now + wait) if wait is not None else None,
                }
                by_user[d.user_id].append((d, payload))
            out: list[Stored] = []
            params: list[dict[str, Any]] = []
            stored_by_user = await stream.append_many(
                conn,
                {u: [p for _, p in items] for u, items in by_user.items()},
                now,
                self.ledger.history_size,
            )
            for user_id in sorted(by_user):  # the order append_many stored them in
                for (d, _), s in zip(by_user[user_id], stored_by_user[user_id], strict=True):
                    out.append(s)
                    params.append(
                        {"b_job_id": d.job_id, "b_seq": s.seq, "b_msg": stream.dumps(s.payload)}
                    )
                    self._seen[d.job_id] = _Seen(
                        s.seq, True, d.position, parse_iso(s.payload["estimatedStart"])
                    )
            if params:
                await conn.execute(
                    update(jobs_t)
                    .where(jobs_t.c.job_id == bindparam("b_job_id"))
                    .values(last_message=bindparam("b_msg"), updated_seq=bindparam("b_seq")),
                    params,
                )
        return out
