"""One user's own links at a glance, read from the daily rollup: their clicks by UTC
day and their most clicked links (one statement), then the links the page names.

Only the user's own links, an admin's too: the overview is "my links", where the
summary of the stats API (kurz.analytics.stats.get_summary) gives an admin every link.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncConnection

from kurz.analytics.models import ClickCounts, LinkBrief, Overview, SeriesPoint, TopLink
from kurz.analytics.stats import TOP_LINKS, Window, custom_plans
from kurz.db.tables import domains, link_clicks_daily, links

RECENT_LINKS = 10


def _own(user_id: int) -> list[ColumnElement[bool]]:
    return [links.c.user_id == user_id, links.c.deleted_at.is_(None)]


def _sum(column: ColumnElement[Any]) -> ColumnElement[Any]:
    # PostgreSQL sums BIGINTs into NUMERIC: cast back, so that the driver gives ints.
    return sa.cast(sa.func.sum(column), sa.BigInteger)


def _clicks_statement(user_id: int, span: Window) -> sa.CompoundSelect[Any]:
    """The user's daily rows of the range, summed by day (rows without a link), and
    the TOP_LINKS links with the most clicks (rows without a day).

    Two passes over the rows rather than one over a CTE that both read: SQLite would
    materialise the CTE, and the sum by link would lose the order in which the rows
    arrive (by link, from the indexes), which lets SQLite sum them with no sort.
    """
    d = link_clicks_daily
    rows = links.join(d, d.c.link_id == links.c.id)
    mine = [*_own(user_id), d.c.day >= span.start, d.c.day < span.end]
    by_day = (
        sa.select(
            d.c.day,
            sa.null().label("link_id"),
            _sum(d.c.clicks).label("clicks"),
            _sum(d.c.uniques).label("uniques"),
            _sum(d.c.bot_clicks).label("bot_clicks"),
        )
        .select_from(rows)
        .where(*mine)
        .group_by(d.c.day)
    )
    clicks = _sum(d.c.clicks)
    by_link = (
        sa.select(links.c.id.label("link_id"), clicks.label("clicks"))
        .select_from(rows)
        .where(*mine)
        .group_by(links.c.id)
        .having(clicks > 0)
        .order_by(clicks.desc(), links.c.id.desc())
        .limit(TOP_LINKS)
        .subquery("top")
    )
    # The NULLs in the outer SELECT, so that the UNION gives them the first part's types.
    top = sa.select(
        sa.null().label("day"), by_link.c.link_id, by_link.c.clicks, sa.null(), sa.null()
    )
    return sa.union_all(by_day, top)


def _links_statement(user_id: int, top_ids: list[int]) -> sa.Select[Any]:
    """The top links and the RECENT_LINKS newest (the user's highest ids), with the
    count of the user's links on every row."""
    newest = (
        sa.select(links.c.id)
        .where(*_own(user_id))
        .order_by(links.c.id.desc())
        .limit(RECENT_LINKS)
        .scalar_subquery()
    )
    count = sa.select(sa.func.count()).select_from(links).where(*_own(user_id))
    return (
        sa.select(
            links.c.id,
            links.c.code,
            links.c.url,
            links.c.og_title,
            links.c.created_at,
            domains.c.host,
            count.scalar_subquery(),
        )
        .select_from(links.outerjoin(domains, domains.c.id == links.c.domain_id))
        .where(sa.or_(links.c.id.in_(top_ids), links.c.id.in_(newest)))
        .order_by(links.c.id.desc())
    )


async def get_overview(
    *, conn: AsyncConnection, user_id: int, span: Window, default_host: str
) -> Overview:
    """The overview of `user_id`'s own live links over `span` (whole UTC days)."""
    await custom_plans(conn)
    days: dict[Any, tuple[int, int, int]] = {}
    top: list[tuple[int, int]] = []
    for day, link_id, clicks, uniques, bots in await conn.execute(_clicks_statement(user_id, span)):
        if link_id is None:
            days[day] = (clicks, uniques, bots)
        else:
            top.append((link_id, clicks))
    rows = (await conn.execute(_links_statement(user_id, [link_id for link_id, _ in top]))).all()

    briefs = {
        link_id: LinkBrief(
            code=code, domain=host, host=host or default_host, url=url, title=title,
            created_at=created_at,
        )
        for link_id, code, url, title, created_at, host, _ in rows
    }  # fmt: skip
    series = [
        SeriesPoint.model_construct(at=at, clicks=c, uniques=u, bot_clicks=b)
        for at in span.points()
        for c, u, b in [days.get(at, (0, 0, 0))]
    ]
    return Overview(
        start=span.start,
        end=span.end,
        links=rows[0][-1] if rows else 0,
        totals=ClickCounts(
            clicks=sum(p.clicks for p in series),
            uniques=sum(p.uniques for p in series),
            bot_clicks=sum(p.bot_clicks for p in series),
        ),
        series=series,
        # A UNION promises no order: ranked again here as the database did, ties going
        # to the newer link.
        top_links=[
            TopLink(**briefs[link_id].model_dump(), clicks=clicks)
            for link_id, clicks in sorted(top, key=lambda pair: (-pair[1], -pair[0]))
            if link_id in briefs
        ],
        recent_links=[briefs[row[0]] for row in rows[:RECENT_LINKS]],
    )
