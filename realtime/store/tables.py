"""The tables. The schema itself is owned by the alembic migrations (store/migrations)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
)

metadata = MetaData()

# One row per user: the stream's position. `last_seq` is bumped inside the
# transaction that stores a message, which is what makes seq gap-free.
streams = Table(
    "streams",
    metadata,
    Column("user_id", String(128), primary_key=True),
    Column("epoch", String(32), nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("acked_seq", BigInteger, nullable=False),
    Column("created_at", Float, nullable=False),
)

messages = Table(
    "messages",
    metadata,
    Column("user_id", String(128), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("type", String(32), nullable=False),
    Column("job_id", String(64), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("payload", Text, nullable=False),
    Index("ix_messages_created_at", "created_at"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("job_id", String(64), primary_key=True),
    Column("user_id", String(128), nullable=False),
    Column("video_url", Text, nullable=True),
    Column("title", Text, nullable=True),
    Column("status", String(16), nullable=False),
    Column("stage", String(32), nullable=True),
    Column("progress", Integer, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("error", Text, nullable=True),
    Column("error_code", String(64), nullable=True),
    Column("submitted_at", Float, nullable=False),
    Column("started_at", Float, nullable=True),
    Column("stage_started_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
    Column("retry_at", Float, nullable=True),
    Column("estimated_completion", Float, nullable=True),
    Column("worker_id", String(64), nullable=True),
    Column("heartbeat_at", Float, nullable=True),
    Column("result", Text, nullable=True),
    Column("last_message", Text, nullable=True),
    Column("updated_seq", BigInteger, nullable=False),
    Column("updated_at", Float, nullable=True),
    Column("video_duration", Float, nullable=True),
    Column("speed", Float, nullable=False, server_default="1"),
    Column("stage_progress", Integer, nullable=True),
    Column("pipeline", String(32), nullable=True),
    Column("hidden", Boolean, nullable=False, server_default=false()),
    Index("ix_jobs_user", "user_id", "status"),
    Index("ix_jobs_queue", "status", "submitted_at", "job_id"),
    Index("ix_jobs_active", "status", "updated_at"),
)

# Live demo workers and pipelines that declared their slots: their slots and speed feed the
# queue estimates (without any, capacity is what was observed: store/queue.py).
workers = Table(
    "workers",
    metadata,
    Column("worker_id", String(64), primary_key=True),
    Column("concurrency", Integer, nullable=False),
    Column("speed", Float, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("heartbeat_at", Float, nullable=False),
)

# Measured stage durations, normalised to speed 1, for the estimator: learned from the stage
# transitions of every job the store writes (store/writes.py), whoever publishes them.
stage_samples = Table(
    "stage_samples",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("stage", String(32), nullable=False),
    Column("seconds", Float, nullable=False),
    Column("recorded_at", Float, nullable=False),
    Column("video_seconds", Float, nullable=True),
    Index("ix_stage_samples_stage", "stage", "id"),
)
