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
from kurz.analytics.stats import TOP_LINKS, Window, bytewise, custom_plans
from kurz.db.tables import domains, link_clicks_daily, links

RECENT_LINKS = 10


def _own(user_id: int) -> list[ColumnElement[bool]]:
    return [links.c.user_id == user_id, links.c.deleted_at.is_(None)]


def _sum(column: ColumnElement[Any]) -> ColumnElement[Any]:
    # PostgreSQL sums BIGINTs into NUMERIC: cast back, so that the driver gives ints.
    return sa.cast(sa.func.sum(column), sa.BigInteger)


def _clicks_statement(conn: AsyncConnection, user_id: int, span: Window) -> sa.CompoundSelect[Any]:
    """The user's daily rows of the range, summed twice: by day (rows without a link),
    and by link for the TOP_LINKS most clicked (rows without a day)."""
    d = link_clicks_daily
    mine = (
        sa.select(d.c.link_id, links.c.code, d.c.day, d.c.clicks, d.c.uniques, d.c.bot_clicks)
        .select_from(links.join(d, d.c.link_id == links.c.id))
        .where(*_own(user_id), d.c.day >= span.start, d.c.day < span.end)
        .cte("mine")
    )
    by_day = sa.select(
        mine.c.day,
        sa.null().label("link_id"),
        _sum(mine.c.clicks).label("clicks"),
        _sum(mine.c.uniques).label("uniques"),
        _sum(mine.c.bot_clicks).label("bot_clicks"),
    ).group_by(mine.c.day)
    link_clicks = _sum(mine.c.clicks)
    by_link = (
        sa.select(
            mine.c.link_id,
            link_clicks.label("clicks"),
            _sum(mine.c.uniques).label("uniques"),
            _sum(mine.c.bot_clicks).label("bot_clicks"),
        )
        .group_by(mine.c.link_id, mine.c.code)
        .having(link_clicks > 0)
        .order_by(link_clicks.desc(), bytewise(conn, mine.c.code))
        .limit(TOP_LINKS)
        .subquery("top")
    )
    # The NULL in the outer SELECT, so that the UNION gives it the day's type.
    top = sa.select(
        sa.null().label("day"), by_link.c.link_id, by_link.c.clicks, by_link.c.uniques,
        by_link.c.bot_clicks,
    )  # fmt: skip
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
    for day, link_id, clicks, uniques, bots in await conn.execute(
        _clicks_statement(conn, user_id, span)
    ):
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
        # A UNION promises no order: ranked again here, as the database did (code points).
        top_links=sorted(
            (
                TopLink(**briefs[link_id].model_dump(), clicks=clicks)
                for link_id, clicks in top
                if link_id in briefs
            ),
            key=lambda link: (-link.clicks, link.code),
        ),
        recent_links=[briefs[row[0]] for row in rows[:RECENT_LINKS]],
    )
