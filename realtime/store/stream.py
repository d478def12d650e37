"""The per-user message stream: append with gap-free seq, read after a seq, compaction, trim.

Guarantees (on SQLite and PostgreSQL alike):
- `append` runs inside the caller's transaction; the seq it hands out becomes visible only
  with that commit, and a rollback gives it back, so committed seqs are gap-free per user.
- Concurrent appends for one user serialise on the user's `streams` row.
- Reads are self-checking: a read that does not start exactly after the asked seq, or that
  is not contiguous, reports itself incomplete instead of silently skipping.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select, update

from .. import codec
from ..domain.times import iso
from .engine import executemany, in_list, insert_ignore
from .tables import messages, streams

# Size-based trimming runs on every TRIM_EVERY-th append of a user, so a stream holds at most
# history_size + TRIM_EVERY messages while an append almost never pays for a DELETE.
TRIM_EVERY = 64


@dataclass(frozen=True)
class Position:
    epoch: str
    last_seq: int
    acked_seq: int


@dataclass(frozen=True)
class Stored:
    user_id: str
    seq: int
    payload: dict[str, Any]


@dataclass(frozen=True)
class Read:
    messages: list[dict[str, Any]]
    # False when the stored messages no longer reach back to the asked seq (trimmed).
    complete: bool


def new_epoch() -> str:
    return secrets.token_hex(8)


def dumps(payload: dict[str, Any]) -> str:
    return codec.dumps(payload)


def ensure(conn: Connection, user_ids: Sequence[str], now: float) -> None:
    """Create the users' streams that do not exist yet. A write, so on SQLite it is also what
    takes the write lock before anything is read."""
    rows = [
        {"user_id": u, "epoch": new_epoch(), "last_seq": 0, "acked_seq": 0, "created_at": now}
        for u in user_ids
    ]
    # executemany of one cached statement, not a multi-VALUES statement compiled per size.
    executemany(conn, insert_ignore(conn.dialect.name, streams), rows)


# Built once: constructing a statement costs more than running it on the connect path.
_POSITION = select(streams.c.epoch, streams.c.last_seq, streams.c.acked_seq).where(
    streams.c.user_id == bindparam("user_id")
)
_TAIL = select(messages.c.seq, messages.c.payload).where(
    messages.c.user_id == bindparam("user_id"), messages.c.seq > bindparam("after")
)
_AFTER = _TAIL.order_by(messages.c.seq)
_BETWEEN = _TAIL.where(messages.c.seq <= bindparam("upto")).order_by(messages.c.seq)


def position(conn: Connection, user_id: str) -> Position | None:
    """The stream's position (None: no stream yet); read in the caller's transaction, whose
    snapshot (see reader.py) keeps it consistent with whatever else the caller reads."""
    row = conn.execute(_POSITION, {"user_id": user_id}).first()
    return Position(row.epoch, row.last_seq, row.acked_seq) if row else None


@functools.cache
def _lock_q(dialect: str) -> Any:
    """The stream rows of `:users`, locked in user order (PostgreSQL; SQLite's write
    transaction already holds the lock)."""
    q = (
        select(streams.c.user_id, streams.c.last_seq)
        .where(in_list(dialect, streams.c.user_id, "users"))
        .order_by(streams.c.user_id)
    )
    return q.with_for_update() if dialect == "postgresql" else q


_BUMP = update(streams).where(streams.c.user_id == bindparam("b_user_id"))
_INSERT_MESSAGES = messages.insert()


def lock_streams(conn: Connection, user_ids: Iterable[str]) -> dict[str, int]:
    """Lock the users' stream rows in user order (PostgreSQL; SQLite's write transaction
    holds the lock already) and return their last seqs."""
    users = sorted(set(user_ids))
    if not users:
        return {}
    rows = conn.execute(_lock_q(conn.dialect.name), {"users": users})
    return {r.user_id: int(r.last_seq) for r in rows}


def append(
    conn: Connection,
    batches: Mapping[str, Sequence[dict[str, Any]]],
    now: float,
    history_size: int,
    lasts: Mapping[str, int] | None = None,
) -> dict[str, list[Stored]]:
    """Store each user's payloads with that user's next seqs, in a constant number of
    statements: the stream rows are locked in user order (so concurrent writers cannot
    deadlock on them), bumped with one executemany UPDATE, and every message goes in one
    executemany INSERT. Each payload gains `seq` and `ts`. With `lasts` from lock_streams in
    this transaction, the rows are not locked again."""
    ts = iso(now)
    out: dict[str, list[Stored]] = {u: [] for u in batches}
    users = sorted(u for u, p in batches.items() if p)
    if not users:
        return out
    if lasts is None:
        lasts = lock_streams(conn, users)
    rows: list[dict[str, Any]] = []
    bumps: list[dict[str, Any]] = []
    trims: list[tuple[str, int]] = []
    for user_id in users:
        payloads = batches[user_id]
        n = len(payloads)
        first = lasts[user_id] + 1
        last = first + n - 1
        bumps.append({"b_user_id": user_id, "last_seq": last})
        stored = out[user_id]
        for i, p in enumerate(payloads):
            full = {**p, "seq": first + i, "ts": ts}
            stored.append(Stored(user_id, first + i, full))
            rows.append(
                {
                    "user_id": user_id,
                    "seq": first + i,
                    "type": full["type"],
                    "job_id": full.get("jobId"),
                    "created_at": now,
                    "payload": dumps(full),
                }
            )
        if last // TRIM_EVERY != (first - 1) // TRIM_EVERY and last > history_size:
            trims.append((user_id, int(last) - history_size))
    executemany(conn, _BUMP, bumps)
    executemany(conn, _INSERT_MESSAGES, rows)
    for user_id, upto in trims:
        conn.execute(delete(messages).where(messages.c.user_id == user_id, messages.c.seq <= upto))
    return out


def read_after(conn: Connection, user_id: str, after: int, upto: int | None = None) -> Read:
    """Stored messages with after < seq <= upto, oldest first, and whether none is missing."""
    params = {"user_id": user_id, "after": after, "upto": upto}
    rows = conn.execute(_AFTER if upto is None else _BETWEEN, params).all()
    complete = all(row.seq == after + 1 + i for i, row in enumerate(rows))
    if upto is not None and complete:
        complete = (rows[-1].seq if rows else after) == upto
    return Read([codec.loads(r.payload) for r in rows], complete)


_ACK = (
    update(streams)
    .where(
        streams.c.user_id == bindparam("b_user_id"),
        streams.c.acked_seq < bindparam("b_seq"),
        streams.c.last_seq >= bindparam("b_seq"),
    )
    .values(acked_seq=bindparam("b_seq"))
)


def ack(conn: Connection, user_id: str, seq: int) -> None:
    """Move the ack cursor forward (never back, never past the stream's end)."""
    conn.execute(_ACK, {"b_user_id": user_id, "b_seq": seq})


def trim_expired(conn: Connection, cutoff: float) -> int:
    """Delete messages stored before `cutoff` (epoch seconds); returns how many."""
    result = conn.execute(delete(messages).where(messages.c.created_at < cutoff))
    return int(result.rowcount or 0)
