"""One user's own links at a glance, read from the rollups kept per owner: their clicks
by UTC day and their most clicked links of all time (one statement), then the links the
page names. What it reads does not grow with the user's links (docs/analytics.md,
"Per owner").

Only the user's own links, an admin's too: the overview is "my links", where the
summary of the stats API (kurz.analytics.stats.get_summary) gives an admin every link.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncConnection

from kurz.analytics.models import ClickCounts, LinkBrief, Overview, SeriesPoint, TopLink
from kurz.analytics.stats import TOP_LINKS, Window
from kurz.db.tables import domains, link_clicks_total, links, owner_clicks_daily

RECENT_LINKS = 10


def _own(user_id: int) -> list[ColumnElement[bool]]:
    return [links.c.user_id == user_id, links.c.deleted_at.is_(None)]


def _clicks_statement(user_id: int, span: Window) -> sa.CompoundSelect[Any]:
    """The user's rows of owner_clicks_daily in the range (rows without a link), and
    their TOP_LINKS live links with the most clicks of all time (rows without a day).

    The top links are read down the index of link_clicks_total, a deleted link (or one
    no longer the user's) skipped as it comes: ten rows and a few more, never all.
    """
    o = owner_clicks_daily
    by_day = sa.select(
        o.c.day, sa.null().label("link_id"), o.c.clicks, o.c.uniques, o.c.bot_clicks
    ).where(o.c.user_id == user_id, o.c.day >= span.start, o.c.day < span.end)
    t = link_clicks_total
    live = sa.exists().where(links.c.id == t.c.link_id, *_own(user_id))
    most = (
        sa.select(t.c.link_id, t.c.clicks)
        .where(t.c.user_id == user_id, t.c.clicks > 0, live)
        .order_by(t.c.clicks.desc(), t.c.link_id.desc())
        .limit(TOP_LINKS)
        .subquery("top")
    )
    # The NULLs in the outer SELECT, so that the UNION gives them the first part's types.
    top = sa.select(sa.null().label("day"), most.c.link_id, most.c.clicks, sa.null(), sa.null())
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
    """The overview of `user_id`'s own links: their clicks over `span` (whole UTC days;
    deleted links' included), their live links most clicked of all time, and the newest."""
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
