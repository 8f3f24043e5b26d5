"""Click analytics: raw events (kept for a retention period) and the rollups read by the API.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kurz.db.tables import UTCDateTime

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The indexes are explained where kurz.db.tables declares them.
    op.create_table(
        "click_events",
        sa.Column("event_id", sa.String(32), nullable=False),
        sa.Column("link_id", sa.BigInteger(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("referrer_host", sa.String(255)),
        sa.Column("browser", sa.String(50), nullable=False),
        sa.Column("os", sa.String(50), nullable=False),
        sa.Column("device", sa.String(10), nullable=False),
        sa.Column("bot", sa.Boolean(), nullable=False),
        sa.Column("country", sa.String(2)),
        sa.Column("visitor", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_click_events"),
    )
    op.create_index("ix_click_events_at", "click_events", ["at"])
    op.create_table(
        "link_clicks_hourly",
        sa.Column("link_id", sa.BigInteger(), nullable=False),
        sa.Column("hour", UTCDateTime(), nullable=False),
        sa.Column("clicks", sa.BigInteger(), nullable=False),
        sa.Column("bot_clicks", sa.BigInteger(), nullable=False),
        sa.Column("uniques", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("link_id", "hour", name="pk_link_clicks_hourly"),
    )
    op.create_table(
        "link_visitors_hourly",
        sa.Column("link_id", sa.BigInteger(), nullable=False),
        sa.Column("hour", UTCDateTime(), nullable=False),
        sa.Column("visitor", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("link_id", "hour", "visitor", name="pk_link_visitors_hourly"),
    )
    op.create_table(
        "link_clicks_daily",
        sa.Column("link_id", sa.BigInteger(), nullable=False),
        sa.Column("day", UTCDateTime(), nullable=False),
        sa.Column("dimension", sa.String(10), nullable=False),
        sa.Column("value", sa.String(255), nullable=False),
        sa.Column("clicks", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "link_id", "day", "dimension", "value", name="pk_link_clicks_daily"
        ),
    )


def downgrade() -> None:
    op.drop_table("link_clicks_daily")
    op.drop_table("link_visitors_hourly")
    op.drop_table("link_clicks_hourly")
    op.drop_table("click_events")
