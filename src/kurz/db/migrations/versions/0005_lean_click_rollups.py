"""Click analytics reshaped for cheap writes: raw events keyed by an ascending id (no
random key, no index on `at`), batch ids for exactly-once recording, daily totals and
visitor sets, breakdowns keyed dimension-first, and the shared daily visitor salts.

What 0004 recorded (analytics was off by default) is carried over: raw events are
copied, the daily totals and visitor sets are rebuilt from the hourly ones.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kurz.db.tables import BigId, UTCDateTime

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_EVENT_COLUMNS = "link_id, at, referrer_host, browser, os, device, bot, country, visitor"


def _day(column: str) -> str:
    """SQL for the UTC day a stored timestamp falls on, as the column type stores it."""
    if op.get_bind().dialect.name == "sqlite":
        # SQLAlchemy stores "YYYY-MM-DD HH:MM:SS.ffffff" on SQLite.
        return f"substr({column}, 1, 10) || ' 00:00:00.000000'"
    return f"date_trunc('day', {column}, 'UTC')"


def _set_aside(table: str, suffix: str) -> None:
    """Rename a table and, on PostgreSQL (where index names are per schema), its key's
    index, so that the table replacing it can take both names."""
    op.rename_table(table, f"{table}_{suffix}")
    if op.get_bind().dialect.name != "sqlite":
        op.execute(f"ALTER INDEX pk_{table} RENAME TO pk_{table}_{suffix}")


def upgrade() -> None:
    # The indexes are explained where kurz.db.tables declares them.
    _set_aside("click_events", "0004")
    op.create_table(
        "click_events",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("link_id", sa.BigInteger(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("referrer_host", sa.String(255)),
        sa.Column("browser", sa.String(50), nullable=False),
        sa.Column("os", sa.String(50), nullable=False),
        sa.Column("device", sa.String(10), nullable=False),
        sa.Column("bot", sa.Boolean(), nullable=False),
        sa.Column("country", sa.String(2)),
        sa.Column("visitor", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_click_events"),
    )
    op.execute(
        f"INSERT INTO click_events ({_EVENT_COLUMNS}) "
        f"SELECT {_EVENT_COLUMNS} FROM click_events_0004 ORDER BY at"
    )
    op.drop_index("ix_click_events_at", "click_events_0004")
    op.drop_table("click_events_0004")

    op.create_table(
        "click_batches",
        sa.Column("id", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_click_batches"),
    )

    # Keyed time first now (the purge is a range); rebuilt, as a key cannot be altered
    # on SQLite.
    _set_aside("link_visitors_hourly", "0004")
    op.create_table(
        "link_visitors_hourly",
        sa.Column("hour", UTCDateTime(), nullable=False),
        sa.Column("link_id", sa.BigInteger(), nullable=False),
        sa.Column("visitor", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("hour", "link_id", "visitor", name="pk_link_visitors_hourly"),
    )
    op.execute(
        "INSERT INTO link_visitors_hourly (hour, link_id, visitor) "
        "SELECT hour, link_id, visitor FROM link_visitors_hourly_0004"
    )
    op.drop_table("link_visitors_hourly_0004")

    op.create_table(
        "link_breakdowns_daily",
        sa.Column("link_id", sa.BigInteger(), nullable=False),
        sa.Column("dimension", sa.String(10), nullable=False),
        sa.Column("day", UTCDateTime(), nullable=False),
        sa.Column("value", sa.String(255), nullable=False),
        sa.Column("clicks", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "link_id", "dimension", "day", "value", name="pk_link_breakdowns_daily"
        ),
    )
    op.execute(
        "INSERT INTO link_breakdowns_daily (link_id, dimension, day, value, clicks) "
        "SELECT link_id, dimension, day, value, clicks FROM link_clicks_daily"
    )
    op.drop_table("link_clicks_daily")

    op.create_table(
        "link_visitors_daily",
        sa.Column("day", UTCDateTime(), nullable=False),
        sa.Column("link_id", sa.BigInteger(), nullable=False),
        sa.Column("visitor", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("day", "link_id", "visitor", name="pk_link_visitors_daily"),
    )
    op.execute(
        "INSERT INTO link_visitors_daily (link_id, day, visitor) "
        f"SELECT DISTINCT link_id, {_day('hour')}, visitor FROM link_visitors_hourly"
    )

    op.create_table(
        "link_clicks_daily",
        sa.Column("link_id", sa.BigInteger(), nullable=False),
        sa.Column("day", UTCDateTime(), nullable=False),
        sa.Column("clicks", sa.BigInteger(), nullable=False),
        sa.Column("bot_clicks", sa.BigInteger(), nullable=False),
        sa.Column("uniques", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("link_id", "day", name="pk_link_clicks_daily"),
    )
    op.execute(
        "INSERT INTO link_clicks_daily (link_id, day, clicks, bot_clicks, uniques) "
        f"SELECT h.link_id, h.day, h.clicks, h.bot_clicks, "
        "(SELECT count(*) FROM link_visitors_daily v WHERE v.link_id = h.link_id "
        "AND v.day = h.day) "
        f"FROM (SELECT link_id, {_day('hour')} AS day, sum(clicks) AS clicks, "
        "sum(bot_clicks) AS bot_clicks FROM link_clicks_hourly "
        f"GROUP BY link_id, {_day('hour')}) h"
    )

    op.create_table(
        "visitor_salts",
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("salt", sa.LargeBinary(32), nullable=False),
        sa.PrimaryKeyConstraint("day", name="pk_visitor_salts"),
    )


def downgrade() -> None:
    op.drop_table("visitor_salts")
    op.drop_table("link_clicks_daily")
    op.drop_table("link_visitors_daily")
    _set_aside("link_visitors_hourly", "0005")
    op.create_table(
        "link_visitors_hourly",
        sa.Column("link_id", sa.BigInteger(), nullable=False),
        sa.Column("hour", UTCDateTime(), nullable=False),
        sa.Column("visitor", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("link_id", "hour", "visitor", name="pk_link_visitors_hourly"),
    )
    op.execute(
        "INSERT INTO link_visitors_hourly (link_id, hour, visitor) "
        "SELECT link_id, hour, visitor FROM link_visitors_hourly_0005"
    )
    op.drop_table("link_visitors_hourly_0005")
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
    op.execute(
        "INSERT INTO link_clicks_daily (link_id, day, dimension, value, clicks) "
        "SELECT link_id, day, dimension, value, clicks FROM link_breakdowns_daily"
    )
    op.drop_table("link_breakdowns_daily")
    op.drop_table("click_batches")
    # 0004 keyed raw events by a random id; each copied event gets one.
    _set_aside("click_events", "0005")
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
    random_id = (
        "lower(hex(randomblob(16)))"
        if op.get_bind().dialect.name == "sqlite"
        else "md5(random()::text || id::text)"
    )
    op.execute(
        f"INSERT INTO click_events (event_id, {_EVENT_COLUMNS}) "
        f"SELECT {random_id}, {_EVENT_COLUMNS} FROM click_events_0005"
    )
    op.drop_table("click_events_0005")
    op.create_index("ix_click_events_at", "click_events", ["at"])
