"""QueueNotifier: stores and sends the `queue_update`s of queued jobs whose position changed or
whose estimatedStart moved by more than max(10 s, 25 %).

One pass costs a bounded number of round trips, whatever the queue's length:
- one ordered scan of the queue (job id, user, updated_seq) gives every position;
- the job's last stored queue_update is read (one query per 500 jobs) only for jobs this
  notifier has not seen since their last message, so a steady queue costs one scan;
- the updates are written in short transactions of about CHUNK jobs, each one call of the
  store's one write path (writes.commit: a constant number of statements), in one hop.

Several notifiers (every worker process, every server) may run at once. Each write
transaction re-reads the jobs and writes only those still queued whose `updated_seq` is the
one the pass decided on (the write's guard): a job that got any message meanwhile (another notifier's update, a
claim, a cancel) is left to the next pass, so there are no duplicates and no stale position
overwrites a fresher one. Bursts coalesce: a pass handles whatever changed since the last.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from .. import codec
from ..broadcast.outbox import Outbox
from ..domain import eta
from ..domain import messages as msg
from ..domain.job import Status
from ..domain.times import parse_iso
from ..loops import supervise
from ..store.claims import queue_lock
from ..store.ledger import Ledger
from ..store.stream import Stored
from ..store.tables import jobs as jobs_t
from ..store.writes import Write, unchanged_since

# Jobs per write transaction: small enough that a claim waits only milliseconds for it.
CHUNK = 500
_READ_CHUNK = 500
_QUEUED = (
    select(jobs_t.c.job_id, jobs_t.c.user_id, jobs_t.c.updated_seq)
    .where(jobs_t.c.status == Status.QUEUED.value)
    .order_by(jobs_t.c.submitted_at, jobs_t.c.job_id)
)


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


def _seen(updated_seq: int, raw: str | None) -> _Seen:
    m = codec.loads(raw) if raw else None
    if not m or m.get("type") != "queue_update":
        return _Seen(updated_seq, False, None, None)
    return _Seen(updated_seq, True, m.get("position"), parse_iso(m.get("estimatedStart")))


class QueueNotifier:
    """`await notifier.run()` in a task; set `notifier.wake` to run a pass early."""

    def __init__(
        self,
        ledger: Ledger,
        outbox: Outbox,
        *,
        interval: float = 0.5,
        chunk: int = CHUNK,
    ) -> None:
        self.ledger = ledger
        self.outbox = outbox
        self.interval = interval
        self.chunk = chunk
        self.wake = asyncio.Event()
        self.last_pass_seconds = 0.0
        self._seen: dict[str, _Seen] = {}

    async def run(self) -> None:
        """Pass after pass until cancelled; a slow pass (a huge queue) stretches the pause."""
        await supervise(
            "queue notifier",
            self._timed_pass,
            every=lambda: max(self.interval, self.last_pass_seconds),
            wake=self.wake,
            run_first=True,
        )

    async def _timed_pass(self) -> None:
        started = time.monotonic()
        try:
            await self.pass_once()
        finally:
            self.last_pass_seconds = time.monotonic() - started

    def _read(self, conn: Connection) -> tuple[Sequence[Any], dict[str, _Seen], list[float] | None]:
        """The queue in order, what changed since this notifier last looked, and the waits."""
        rows = conn.execute(_QUEUED).all()
        if not rows:
            return rows, {}, None
        stale = [
            r.job_id
            for r in rows
            if (s := self._seen.get(r.job_id)) is None or s.updated_seq != r.updated_seq
        ]
        found: dict[str, _Seen] = {}
        for i in range(0, len(stale), _READ_CHUNK):
            q = select(jobs_t.c.job_id, jobs_t.c.updated_seq, jobs_t.c.last_message).where(
                jobs_t.c.job_id.in_(stale[i : i + _READ_CHUNK])
            )
            for job_id, seq, raw in conn.execute(q):
                found[job_id] = _seen(int(seq), raw)
        return rows, found, self.ledger.queue.outlook(conn).waits(len(rows))

    async def pass_once(self) -> int:
        """One pass over the queue; returns how many queue_updates it stored."""
        now = self.ledger.clock()
        rows, found, waits = await self.ledger.hops.read(self._read)
        if not rows:
            self._seen.clear()
            return 0
        self._seen.update(found)
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
            out = await self.ledger.hops.write(self._store, batch, len(rows))
            for d, s in out:
                self._seen[d.job_id] = _Seen(
                    s.seq, True, d.position, parse_iso(s.payload["estimatedStart"])
                )
            stored += len(out)
            await self.outbox.send([s for _, s in out])
        return stored

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

    def _store(self, conn: Connection, batch: list[_Due], length: int) -> list[tuple[_Due, Stored]]:
        now = self.ledger.clock()
        queue_lock(conn, exclusive=True)
        writes = []
        for d in batch:
            wait = round(max(d.start - now, 0.0), 3) if d.start is not None else None
            update = msg.queue_update(d.job_id, d.position, length, wait, now)
            # A job that got any message since the pass read it is left to the next pass (and
            # one no longer queued is refused by jobs.apply: a queue_update needs `queued`).
            writes.append(Write(d.user_id, update, guard=unchanged_since(d.updated_seq)))
        outcomes = self.ledger.commit(conn, writes, now)
        out = [(d, o) for d, o in zip(batch, outcomes, strict=True) if isinstance(o, Stored)]
        # In the order they were stored (user by user), which is the order they are sent in.
        return sorted(out, key=lambda pair: (pair[1].user_id, pair[1].seq))
