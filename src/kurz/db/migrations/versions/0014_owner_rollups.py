"""Click rollups per owner: each user's clicks by UTC day (`owner_clicks_daily`), and
each link's clicks of all time with its owner (`link_clicks_total`), so that the
dashboard reads a row per day and its top links from an index, however many links
the user has.

Both are filled from `link_clicks_daily`, deleted links included (their clicks
happened), owned by each link's user now; from here on the click store writes them
with it (docs/analytics.md, "Per owner").

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kurz.db.tables import UTCDateTime

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The index is explained where kurz.db.tables declares it.
    op.create_table(
        "owner_clicks_daily",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("day", UTCDateTime(), nullable=False),
        sa.Column("clicks", sa.BigInteger(), nullable=False),
        sa.Column("bot_clicks", sa.BigInteger(), nullable=False),
        sa.Column("uniques", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "day", name="pk_owner_clicks_daily"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "link_clicks_total",
        sa.Column("link_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("clicks", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("link_id", name="pk_link_clicks_total"),
        sqlite_with_rowid=False,
    )
    op.execute(
        "INSERT INTO owner_clicks_daily (user_id, day, clicks, bot_clicks, uniques) "
        "SELECT l.user_id, d.day, sum(d.clicks), sum(d.bot_clicks), sum(d.uniques) "
        "FROM link_clicks_daily d JOIN links l ON l.id = d.link_id "
        "GROUP BY l.user_id, d.day"
    )
    op.execute(
        "INSERT INTO link_clicks_total (link_id, user_id, clicks) "
        "SELECT d.link_id, l.user_id, sum(d.clicks) "
        "FROM link_clicks_daily d JOIN links l ON l.id = d.link_id "
        "GROUP BY d.link_id, l.user_id HAVING sum(d.clicks) > 0"
    )
    # After the rows: one sort instead of an index entry placed per row.
    op.create_index(
        "ix_link_clicks_total_user_id_clicks_link_id",
        "link_clicks_total",
        ["user_id", "clicks", "link_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_link_clicks_total_user_id_clicks_link_id", table_name="link_clicks_total")
    op.drop_table("link_clicks_total")
    op.drop_table("owner_clicks_daily")
