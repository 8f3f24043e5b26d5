"""A user's links and their click rollups, written straight to the database as the link
queries and the click store would have: for tests that read statistics."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from kurz.clock import utcnow
from kurz.db import READ_COMMITTED, Database
from kurz.db.tables import (
    domains,
    link_breakdowns_daily,
    link_clicks_daily,
    link_clicks_hourly,
    link_clicks_total,
    links,
    owner_clicks_daily,
)
from tests.support import FakeClock


def at(text: str) -> datetime:
    """'2025-12-30' or '2025-12-30 14:00', in UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def new_link(
    db: Database,
    clock: FakeClock,
    user_id: int,
    code: str,
    *,
    url: str = "https://example.com/",
    title: str | None = None,
    domain_id: int = 0,
    deleted: bool = False,
) -> int:
    """A link of `user_id`'s, as creating it would store it; its id."""
    now = utcnow(clock)
    async with db.write(READ_COMMITTED) as conn:
        found = await conn.execute(
            sa.insert(links)
            .values(
                domain_id=domain_id, code=code, url=url, is_alias=True, user_id=user_id,
                created_by_user_id=user_id, created_at=now, updated_at=now,
                redirect_status=302, forward_query=False, og_title=title,
                deleted_at=now if deleted else None,
            )
            .returning(links.c.id)
        )  # fmt: skip
        return int(found.scalar_one())


async def new_domain(db: Database, clock: FakeClock, host: str) -> int:
    now = utcnow(clock)
    async with db.write(READ_COMMITTED) as conn:
        found = await conn.execute(
            sa.insert(domains)
            .values(host=host, https=True, created_at=now, updated_at=now)
            .returning(domains.c.id)
        )
        return int(found.scalar_one())


class Rollups:
    """Rollup rows of any links, as the click store would have written them."""

    def __init__(self) -> None:
        self.rows: dict[sa.Table, list[dict[str, Any]]] = {}

    def day(self, link_id: int, day: str, clicks: int, uniques: int, bots: int = 0) -> Rollups:
        row = {"day": at(day), "clicks": clicks, "uniques": uniques, "bot_clicks": bots}
        return self._add(link_clicks_daily, link_id, row)

    def hour(self, link_id: int, hour: str, clicks: int, uniques: int, bots: int = 0) -> Rollups:
        row = {"hour": at(hour), "clicks": clicks, "uniques": uniques, "bot_clicks": bots}
        return self._add(link_clicks_hourly, link_id, row)

    def value(self, link_id: int, day: str, dimension: str, value: str, clicks: int) -> Rollups:
        row = {"day": at(day), "dimension": dimension, "value": value, "clicks": clicks}
        return self._add(link_breakdowns_daily, link_id, row)

    def _add(self, table: sa.Table, link_id: int, row: dict[str, Any]) -> Rollups:
        self.rows.setdefault(table, []).append({"link_id": link_id, **row})
        return self

    async def write(self, db: Database) -> None:
        """The rows, and the per-owner rollups made again from link_clicks_daily."""
        async with db.write(READ_COMMITTED) as conn:
            for table, rows in self.rows.items():
                await conn.execute(sa.insert(table), rows)
            await conn.execute(sa.delete(owner_clicks_daily))
            await conn.execute(sa.delete(link_clicks_total))
            for statement in OWNER_ROLLUPS:
                await conn.execute(sa.text(statement))
        self.rows.clear()


# What the per-owner rollups hold: link_clicks_daily summed by each link's owner, by
# day and by link (as migration 0013 fills them, and the click store keeps them).
OWNER_ROLLUPS = (
    "INSERT INTO owner_clicks_daily (user_id, day, clicks, bot_clicks, uniques) "
    "SELECT l.user_id, d.day, sum(d.clicks), sum(d.bot_clicks), sum(d.uniques) "
    "FROM link_clicks_daily d JOIN links l ON l.id = d.link_id GROUP BY l.user_id, d.day",
    "INSERT INTO link_clicks_total (link_id, user_id, clicks) "
    "SELECT d.link_id, l.user_id, sum(d.clicks) FROM link_clicks_daily d "
    "JOIN links l ON l.id = d.link_id GROUP BY d.link_id, l.user_id HAVING sum(d.clicks) > 0",
)


class Statements:
    """Counts the SQL statements the database runs, from its creation on."""

    def __init__(self, db: Database) -> None:
        self.count = 0

        def counted(*_: Any) -> None:
            self.count += 1

        event.listen(db.engine.sync_engine, "before_cursor_execute", counted)
