"""The one write path: apply messages to their jobs and store them, in the caller's transaction.

Every message the service stores goes through `commit`: publishes and cancels (batched by the
group committer), submits, claims, the stalled-job sweep and the queue notifier (each in one
short transaction of its own, in one thread hop on SQLite: see hops.py). So the rules of a
write live in one place:

- the first statement is a write (the users' stream rows): on SQLite the transaction holds
  the write lock before it reads anything;
- jobs are locked in job id order, then streams in user order (PostgreSQL), so concurrent
  writers never deadlock on each other;
- each message is checked on its own (`guard`, then the pure `jobs.apply`): one that is
  refused fails only itself, and seqs are handed out only to the messages that passed, in
  order per user, so committed seqs stay gap-free;
- a constant number of statements per call, however many messages it carries.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from ..domain.errors import Conflict, DomainError, NotFound
from ..domain.job import Job, apply
from . import stream
from .engine import in_list, plan_per_execution
from .rows import job_from_row, job_values
from .stream import Stored
from .tables import jobs as jobs_t

# Built once: constructing a statement costs about as much as running it.
_INSERT_JOBS = insert(jobs_t)
_UPDATE_JOBS = update(jobs_t).where(jobs_t.c.job_id == bindparam("b_job_id"))


@functools.cache
def _jobs_q(dialect: str) -> Any:
    """The jobs of `:ids`, locked in id order (PostgreSQL)."""
    q = select(jobs_t).where(in_list(dialect, jobs_t.c.job_id, "ids")).order_by(jobs_t.c.job_id)
    return q.with_for_update() if dialect == "postgresql" else q


@dataclass(slots=True)
class Write:
    """One message to apply to its job and store.

    `message` is validated already (schemas.validated or a messages builder). With `create`, a
    job the store does not know is created for `user_id`; with `new`, that job is inserted
    (a submit; it must not exist). `guard(job)` may raise a DomainError to leave the job
    untouched (a worker that no longer holds it); `touch(job, now)` sets what the message
    does not (the claiming worker, a heartbeat).
    """

    user_id: str
    message: dict[str, Any]
    create: bool = False
    new: Job | None = None
    guard: Callable[[Job], None] | None = None
    touch: Callable[[Job, float], None] | None = None


Outcome = Stored | DomainError


def commit(
    conn: Connection, writes: Sequence[Write], now: float, history_size: int
) -> list[Outcome]:
    """Apply and store `writes` in the caller's (open) transaction; one outcome each, in order."""
    outcomes: list[Outcome | None] = [None] * len(writes)
    # First statement a write: on SQLite the transaction now holds the write lock.
    stream.ensure(conn, sorted({w.user_id for w in writes}), now)
    job_ids = sorted({w.message["jobId"] for w in writes})
    plan_per_execution(conn, True)
    rows = conn.execute(_jobs_q(conn.dialect.name), {"ids": job_ids})
    jobs = {row.job_id: job_from_row(row) for row in rows}
    lasts = stream.lock_streams(conn, (w.user_id for w in writes))
    plan_per_execution(conn, False)
    existed = set(jobs)
    accepted: list[tuple[int, str, dict[str, Any]]] = []
    for i, w in enumerate(writes):
        job_id = w.message["jobId"]
        job = jobs.get(job_id)
        if w.new is not None:
            if job is not None:
                outcomes[i] = Conflict(f"job {job_id} exists already")
                continue
            job = w.new
        elif job is None:
            if not w.create:
                outcomes[i] = NotFound(f"job {job_id} does not exist", {"jobId": ["unknown job"]})
                continue
            job = Job(job_id=job_id, user_id=w.user_id, submitted_at=now)
        elif job.user_id != w.user_id:
            outcomes[i] = Conflict(f"job {job_id} belongs to another user")
            continue
        try:
            if w.guard is not None:
                w.guard(job)
            job, payload = apply(job, w.message, now)
        except DomainError as exc:
            outcomes[i] = exc
            continue
        if w.touch is not None:
            w.touch(job, now)
        jobs[job_id] = job
        accepted.append((i, w.user_id, payload))
    by_user: dict[str, list[dict[str, Any]]] = {}
    for _, user_id, payload in accepted:
        by_user.setdefault(user_id, []).append(payload)
    stored = stream.append(conn, by_user, now, history_size, lasts)
    cursor = {u: iter(s) for u, s in stored.items()}
    changed: dict[str, Job] = {}
    for i, user_id, _ in accepted:
        s = next(cursor[user_id])
        job = jobs[writes[i].message["jobId"]]
        job.last_message = s.payload
        job.updated_seq = s.seq
        changed[job.job_id] = job
        outcomes[i] = s
    new_rows = [job_values(j) for j in changed.values() if j.job_id not in existed]
    if new_rows:
        conn.execute(_INSERT_JOBS, new_rows)
    updates = []
    for j in changed.values():
        if j.job_id in existed:
            row = job_values(j)
            row["b_job_id"] = row.pop("job_id")
            updates.append(row)
    if updates:
        conn.execute(_UPDATE_JOBS, updates)
    assert all(o is not None for o in outcomes)
    return outcomes  # type: ignore[return-value]


def commit_one(conn: Connection, write: Write, now: float, history_size: int) -> Stored:
    """`commit` of a single write; raises its DomainError."""
    [outcome] = commit(conn, [write], now, history_size)
    if isinstance(outcome, DomainError):
        raise outcome
    return outcome
