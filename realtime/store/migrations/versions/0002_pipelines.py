"""What real pipelines need: learned estimates, observed capacity, the stall sweep, demo jobs.

- jobs.updated_at: when the job last got a message (the stall sweep's clock);
- jobs.video_duration: the video's length, when a publisher reports it (scales estimates);
- jobs.speed: the speed of the worker that claimed it (1 for real pipelines), so learned
  stage lengths are comparable;
- jobs.stage_progress: the job's progress when its current stage began;
- jobs.pipeline: who may claim it (`demo` for the demo worker; NULL: the team's own pipeline);
- stage_samples.video_seconds: the video's length behind a sample.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("updated_at", sa.Float, nullable=True))
        batch.add_column(sa.Column("video_duration", sa.Float, nullable=True))
        batch.add_column(sa.Column("speed", sa.Float, nullable=False, server_default="1"))
        batch.add_column(sa.Column("stage_progress", sa.Integer, nullable=True))
        batch.add_column(sa.Column("pipeline", sa.String(32), nullable=True))
    op.execute("UPDATE jobs SET updated_at = submitted_at")
    op.create_index("ix_jobs_active", "jobs", ["status", "updated_at"])
    with op.batch_alter_table("stage_samples") as batch:
        batch.add_column(sa.Column("video_seconds", sa.Float, nullable=True))


def downgrade() -> None:
    op.drop_index("ix_jobs_active", "jobs")
    with op.batch_alter_table("stage_samples") as batch:
        batch.drop_column("video_seconds")
    with op.batch_alter_table("jobs") as batch:
        for column in ("pipeline", "stage_progress", "speed", "video_duration", "updated_at"):
            batch.drop_column(column)
