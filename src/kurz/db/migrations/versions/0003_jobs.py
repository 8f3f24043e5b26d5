"""Durable jobs and periodic schedules (kurz.jobs), and the index that retires expired links.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kurz.db.tables import BigId, UTCDateTime

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUEUED = sa.text("state = 'queued'")
RUNNING = sa.text("state = 'running'")
UNFINISHED = sa.text("state IN ('queued', 'running') AND unique_key IS NOT NULL")
EXPIRING = sa.text("deleted_at IS NULL AND expires_at IS NOT NULL")


def upgrade() -> None:
    # The indexes are explained where kurz.db.tables declares them.
    op.create_table(
        "jobs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(100), nullable=False),
        sa.Column("queue", sa.String(100), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("run_at", UTCDateTime(), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("attempts", sa.SmallInteger(), nullable=False),
        sa.Column("max_attempts", sa.SmallInteger(), nullable=False),
        sa.Column("unique_key", sa.String(255)),
        sa.Column("locked_by", sa.String(100)),
        sa.Column("locked_until", UTCDateTime()),
        sa.Column("last_error", sa.Text()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime()),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
    )
    op.create_index(
        "ix_jobs_claim", "jobs", ["queue", "run_at"],
        postgresql_where=QUEUED, sqlite_where=QUEUED,
    )  # fmt: skip
    op.create_index(
        "ix_jobs_lease", "jobs", ["locked_until"], postgresql_where=RUNNING, sqlite_where=RUNNING
    )
    op.create_index(
        "uq_jobs_unique_key", "jobs", ["unique_key"], unique=True,
        postgresql_where=UNFINISHED, sqlite_where=UNFINISHED,
    )  # fmt: skip
    op.create_index("ix_jobs_state", "jobs", ["state", "queue"])
    op.create_table(
        "job_schedules",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("last_tick", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_job_schedules"),
    )
    op.create_index(
        "ix_links_expires_at", "links", ["expires_at"],
        postgresql_where=EXPIRING, sqlite_where=EXPIRING,
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_links_expires_at", "links")
    op.drop_table("job_schedules")
    op.drop_table("jobs")
