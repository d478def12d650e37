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
- every stage a message ends (a move to a later stage, a completion) becomes a sample of that
  stage's length in `stage_samples`, whoever published it, and a progress_update without an
  estimatedCompletion gets one from the model those samples give (`Estimates`);
- a constant number of statements per call, however many messages it carries.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from ..domain.errors import Conflict, DomainError, NotFound
from ..domain.job import Job, apply, stage_sample
from . import stream
from .engine import executemany, in_list, plan_per_execution
from .estimates import Estimates
from .rows import job_from_row, job_values
from .stream import Stored
from .tables import jobs as jobs_t
from .tables import stage_samples

# Built once: constructing a statement costs about as much as running it.
_INSERT_JOBS = insert(jobs_t)
_UPDATE_JOBS = update(jobs_t).where(jobs_t.c.job_id == bindparam("b_job_id"))
_INSERT_SAMPLES = insert(stage_samples)


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


def unchanged_since(updated_seq: int) -> Callable[[Job], None]:
    """A guard: the job got no message since it was read (else the write is left out)."""

    def guard(job: Job) -> None:
        if job.updated_seq != updated_seq:
            raise Conflict(f"job {job.job_id} moved on")

    return guard


def commit(
    conn: Connection,
    writes: Sequence[Write],
    now: float,
    history_size: int,
    estimates: Estimates | None = None,
) -> list[Outcome]:
    """Apply and store `writes` in the caller's (open) transaction; one outcome each, in order.
    Without `estimates`, nothing is estimated or learned (tests of the bare path)."""
    if not writes:
        return []
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
    model = estimates.model(conn) if estimates is not None else None
    samples: list[dict[str, Any]] = []
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
        before = job
        try:
            if w.guard is not None:
                w.guard(job)
            job, payload = apply(job, w.message, now, model)
        except DomainError as exc:
            outcomes[i] = exc
            continue
        if w.touch is not None:
            w.touch(job, now)
        sample = stage_sample(before, job, now) if model is not None else None
        if sample is not None:
            stage, seconds, video = sample
            samples.append(
                {"stage": stage, "seconds": seconds, "recorded_at": now, "video_seconds": video}
            )
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
        executemany(conn, _INSERT_JOBS, new_rows)
    updates = []
    for j in changed.values():
        if j.job_id in existed:
            row = job_values(j)
            row["b_job_id"] = row.pop("job_id")
            updates.append(row)
    if updates:
        executemany(conn, _UPDATE_JOBS, updates)
    if samples:
        executemany(conn, _INSERT_SAMPLES, samples)
        assert estimates is not None
        estimates.stale()
    assert all(o is not None for o in outcomes)
    return outcomes  # type: ignore[return-value]
