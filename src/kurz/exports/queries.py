"""What an export reads, on a connection the caller holds: links a page at a time and
their statistics a chunk at a time, each by keyset along an index, so that no
statement's cost or result grows with the number of links or rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Column, ColumnElement, Row, Table
from sqlalchemy.ext.asyncio import AsyncConnection

from kurz.db.tables import (
    domains,
    link_breakdowns_daily,
    link_clicks_daily,
    link_clicks_hourly,
    link_clicks_total,
    links,
    users,
)
from kurz.links import queries
from kurz.links.models import LinkRead

AnyRow = Row[*tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class Exported:
    """A link as an export writes it: as the API renders it, and what else a copy needs."""

    id: int
    link: LinkRead
    owner: str
    default_domain: bool
    visits: int
    password_hash: str | None
    deleted_at: datetime | None


async def links_page(
    conn: AsyncConnection,
    *,
    user_id: int | None,
    after: int,
    limit: int,
    base_url: str,
    deleted: bool = True,
) -> list[Exported]:
    """Up to `limit` links with ids above `after`, by id: every link (the primary key),
    tombstones too if `deleted`, or `user_id`'s live ones (their index,
    ix_links_user_id_id).

    A tombstone on a domain since removed is left out: no host names it any more.
    """
    query = (
        queries.selected()
        .add_columns(
            links.c.user_id,
            links.c.visits,
            links.c.password_hash,
            links.c.deleted_at,
            users.c.email.label("owner"),
        )
        .join(users, users.c.id == links.c.user_id)
        .where(links.c.id > after, sa.or_(links.c.domain_id == 0, domains.c.id.is_not(None)))
        .order_by(links.c.id)
        .limit(limit)
    )
    if user_id is not None:
        query = query.where(links.c.user_id == user_id)
    if user_id is not None or not deleted:
        query = query.where(links.c.deleted_at.is_(None))
    rows = (await conn.execute(query)).all()
    tags = await queries.tags_of(conn, [row.id for row in rows])
    return [
        Exported(
            id=row.id,
            link=queries.rendered(row, tags[row.id], base_url=base_url),
            owner=row.owner,
            default_domain=row.domain_id == 0,
            visits=row.visits,
            password_hash=row.password_hash,
            deleted_at=row.deleted_at,
        )
        for row in rows
    ]


async def clicks_of(conn: AsyncConnection, link_ids: Sequence[int]) -> dict[int, int]:
    """People's clicks of all time, by link (those with none are left out)."""
    if not link_ids:
        return {}
    t = link_clicks_total
    found = await conn.execute(sa.select(t.c.link_id, t.c.clicks).where(t.c.link_id.in_(link_ids)))
    return {int(link_id): int(clicks) for link_id, clicks in found}


@dataclass(frozen=True, slots=True)
class Rollup:
    """A rollup table an export carries: the line type it becomes, its primary key
    after link_id, and the columns it holds besides."""

    line: str
    table: Table
    key: tuple[Column[Any], ...]
    values: tuple[Column[Any], ...]

    def columns(self) -> tuple[Column[Any], ...]:
        return (self.table.c.link_id, *self.key, *self.values)

    @property
    def fields(self) -> tuple[str, ...]:
        """The names of the columns after link_id: a line's row's members."""
        return tuple(str(column.name) for column in (*self.key, *self.values))


DAILY = Rollup(
    "clicks_daily",
    link_clicks_daily,
    (link_clicks_daily.c.day,),
    (link_clicks_daily.c.clicks, link_clicks_daily.c.uniques, link_clicks_daily.c.bot_clicks),
)
HOURLY = Rollup(
    "clicks_hourly",
    link_clicks_hourly,
    (link_clicks_hourly.c.hour,),
    (link_clicks_hourly.c.clicks, link_clicks_hourly.c.uniques, link_clicks_hourly.c.bot_clicks),
)
BREAKDOWNS = Rollup(
    "breakdowns_daily",
    link_breakdowns_daily,
    (link_breakdowns_daily.c.dimension, link_breakdowns_daily.c.day, link_breakdowns_daily.c.value),
    (link_breakdowns_daily.c.clicks,),
)
ROLLUPS = (DAILY, HOURLY, BREAKDOWNS)


def _past(key: tuple[Column[Any], ...], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows after `values` in the order of `key` (a row value: SQLite and PostgreSQL
    both take it as a range of the index)."""
    bound = (
        sa.literal(value, type_=column.type) for column, value in zip(key, values, strict=True)
    )
    past: ColumnElement[bool] = sa.tuple_(*key) > sa.tuple_(*bound)
    return past


async def rollup_rows(
    conn: AsyncConnection,
    rollup: Rollup,
    *,
    link_ids: Sequence[int],
    after: AnyRow | None,
    limit: int,
) -> list[AnyRow]:
    """Up to `limit` rows of the links `link_ids` (ascending), in primary key order,
    after the row `after` (one this returned), each a range of the primary key.

    The rest of `after`'s link is one statement (link_id = :id AND key > :after), the
    links after it another (link_id IN (...)): one statement with a row value over
    both would read each link's rows again from its start on SQLite.
    """
    table, link_id = rollup.table, rollup.table.c.link_id
    rows: list[AnyRow] = []
    later = list(link_ids)
    if after is not None:
        current = after[0]
        rest = (
            sa.select(*rollup.columns())
            .where(link_id == current, _past(rollup.key, after[1 : 1 + len(rollup.key)]))
            .order_by(*rollup.key)
            .limit(limit)
        )
        rows = list((await conn.execute(rest)).all())
        later = [i for i in link_ids if i > current]
    if len(rows) < limit and later:
        more = (
            sa.select(*rollup.columns())
            .select_from(table)
            .where(link_id.in_(later))
            .order_by(link_id, *rollup.key)
            .limit(limit - len(rows))
        )
        rows += (await conn.execute(more)).all()
    return rows
