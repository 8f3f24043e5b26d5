"""The click log: raw events kept a row per batch, not per click; and on SQLite, the
click rollups and sets become WITHOUT ROWID tables.

- `click_batches` gains `events`: the batch's events as JSON, one array of fields
  each (kurz.analytics.events.encode). One row, written by the statement that claims
  the batch id, instead of a row per click: the click log costs a click a fraction of
  what it did, and its purge deletes one row per batch. The rows of `click_events` are
  carried over, 10,000 to a row.
- `click_events` becomes a view over the log, one row per event, for reading them
  with SQL.
- SQLite: the rollups, the visitor sets and `click_batches` are keyed by their primary
  key alone instead of a rowid table plus an index of the key. One link's breakdowns
  over 90 days are then one range of one B-tree, with no lookup from the index into
  the table for every row. PostgreSQL has no rowid: nothing changes there.

docs/analytics.md has the figures.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from kurz.db.tables import BigId, UTCDateTime

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEYED_ONLY = (
    "link_clicks_hourly",
    "link_clicks_daily",
    "link_breakdowns_daily",
    "link_visitors_hourly",
    "link_visitors_daily",
)
FIELDS = ("link_id", "at", "referrer_host", "browser", "os", "device", "bot", "country", "visitor")
CHUNK = 10_000

_SQLITE_VIEW = """
CREATE VIEW click_events AS
SELECT b.id AS batch_id,
       json_extract(e.value, '$[0]') AS link_id,
       strftime('%Y-%m-%d %H:%M:%f', json_extract(e.value, '$[1]'), 'unixepoch') AS at,
       json_extract(e.value, '$[2]') AS referrer_host,
       json_extract(e.value, '$[3]') AS browser,
       json_extract(e.value, '$[4]') AS os,
       json_extract(e.value, '$[5]') AS device,
       json_extract(e.value, '$[6]') AS bot,
       json_extract(e.value, '$[7]') AS country,
       json_extract(e.value, '$[8]') AS visitor
FROM click_batches AS b, json_each(b.events) AS e
WHERE b.events IS NOT NULL
"""

_POSTGRES_VIEW = """
CREATE VIEW click_events AS
SELECT b.id AS batch_id,
       (e.value ->> 0)::bigint AS link_id,
       to_timestamp((e.value ->> 1)::double precision) AS at,
       e.value ->> 2 AS referrer_host,
       e.value ->> 3 AS browser,
       e.value ->> 4 AS os,
       e.value ->> 5 AS device,
       (e.value ->> 6)::boolean AS bot,
       e.value ->> 7 AS country,
       e.value ->> 8 AS visitor
FROM click_batches AS b CROSS JOIN LATERAL json_array_elements(b.events::json) AS e(value)
WHERE b.events IS NOT NULL
"""


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _event_rows() -> sa.Table:
    return sa.Table(
        "click_events",
        sa.MetaData(naming_convention={"pk": "pk_%(table_name)s"}),
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("link_id", sa.BigInteger(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("referrer_host", sa.String(255)),
        sa.Column("browser", sa.String(50), nullable=False),
        sa.Column("os", sa.String(50), nullable=False),
        sa.Column("device", sa.String(10), nullable=False),
        sa.Column("bot", sa.Boolean(), nullable=False),
        sa.Column("country", sa.String(2)),
        sa.Column("visitor", sa.String(16), nullable=False),
    )


def _batches() -> sa.Table:
    return sa.Table(
        "click_batches",
        sa.MetaData(),
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("events", sa.Text()),
    )


def _fields(row: sa.Row[Any]) -> list[Any]:
    """An event row as kurz.analytics.events.encode writes an event."""
    return [
        row.link_id,
        row.at.timestamp(),
        row.referrer_host,
        row.browser,
        row.os,
        row.device,
        bool(row.bot),
        row.country,
        row.visitor,
    ]


def upgrade() -> None:
    sqlite = _sqlite()
    if sqlite:
        # Batch mode copies the table into a new one built from its reflection (with
        # its primary key's name), then renames it into place.
        with op.batch_alter_table(
            "click_batches", recreate="always", table_kwargs={"sqlite_with_rowid": False}
        ) as batch:
            batch.add_column(sa.Column("events", sa.Text()))
        for table in KEYED_ONLY:
            with op.batch_alter_table(
                table, recreate="always", table_kwargs={"sqlite_with_rowid": False}
            ):
                pass
    else:
        op.add_column("click_batches", sa.Column("events", sa.Text()))

    bind = op.get_bind()
    events, batches = _event_rows(), _batches()
    after, number = 0, 0
    while chunk := bind.execute(
        sa.select(events).where(events.c.id > after).order_by(events.c.id).limit(CHUNK)
    ).all():
        after = chunk[-1].id
        # As kurz.analytics.queue.batch_id makes them, with a fixed tail: the time in
        # milliseconds leads, so that the purges find these rows by their age.
        ident = f"{int(chunk[0].at.timestamp() * 1000):012x}0006{number:016x}"
        number += 1
        encoded = json.dumps([_fields(row) for row in chunk], separators=(",", ":"))
        bind.execute(sa.insert(batches).values(id=ident, events=encoded))
    op.drop_table("click_events")
    op.execute(_SQLITE_VIEW if sqlite else _POSTGRES_VIEW)


def downgrade() -> None:
    sqlite = _sqlite()
    op.execute("DROP VIEW click_events")
    events = _event_rows()
    events.create(op.get_bind())
    bind = op.get_bind()
    batches = _batches()
    after = ""
    while logged := bind.execute(
        sa.select(batches)
        .where(batches.c.id > after, batches.c.events.is_not(None))
        .order_by(batches.c.id)
        .limit(100)
    ).all():
        after = logged[-1].id
        for row in logged:
            rows = [dict(zip(FIELDS, fields, strict=True)) for fields in json.loads(row.events)]
            for event in rows:
                event["at"] = datetime.fromtimestamp(event["at"], UTC)
            bind.execute(sa.insert(events), rows)
    if sqlite:
        with op.batch_alter_table(
            "click_batches", recreate="always", table_kwargs={"sqlite_with_rowid": True}
        ) as batch:
            batch.drop_column("events")
        for table in KEYED_ONLY:
            with op.batch_alter_table(
                table, recreate="always", table_kwargs={"sqlite_with_rowid": True}
            ):
                pass
    else:
        op.drop_column("click_batches", "events")
