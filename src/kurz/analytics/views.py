"""REST endpoints for click statistics: parse the range, call the analytics use cases, render."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BeforeValidator

from kurz.analytics.models import Interval, LinkStats, StatsSummary
from kurz.analytics.service import Stats
from kurz.auth.views import StatsRead
from kurz.dates import rfc3339_only
from kurz.deps import part
from kurz.openapi import AUTHENTICATED, NOT_FOUND, answer, needs_scope, problem, responses

router = APIRouter(tags=["stats"])
StatsDep = Annotated[Stats, part("stats")]

_INVALID = {422: problem("A malformed, naive, reversed or too long range")}
_SCOPE = needs_scope("stats:read")

_RANGE = """
**Range.** `from` and `to` are RFC 3339 date-times with an offset (`2026-01-01T00:00:00Z`);
a date-time without one is a 422. `to` defaults to now and `from` to {default} before
`to`. The range is widened to whole {unit}: `from` is rounded down and `to` up, and the
response gives the widened range. `from` must be before `to`, and the widened range may
hold at most {most}.

**Counts.** `clicks` are people's clicks; bots' clicks are counted apart in `bot_clicks`
and the `bot` breakdown. Times are UTC.
"""

From = Annotated[
    datetime | None,
    BeforeValidator(rfc3339_only),
    Query(alias="from", description="The start (inclusive), RFC 3339 with an offset."),
]
To = Annotated[
    datetime | None,
    BeforeValidator(rfc3339_only),
    Query(alias="to", description="The end (exclusive), RFC 3339 with an offset."),
]

LINK_STATS = (
    _RANGE.format(
        default="24 hours (interval=hour) or 30 days (interval=day)",
        unit="hours (interval=hour) or whole UTC days (interval=day)",
        most="744 hours (31 days) or 1,096 days (3 years)",
    )
    + """
**Series** has one point per hour or UTC day of the range, zero-filled. A point's
`uniques` are the distinct visitors of that hour or day; `totals.uniques` is the sum of
the points' uniques: visitor-hours with interval=hour, visitor-days with interval=day.
(The visitor hash changes every UTC day, so one person on two days is two visitors.)

**Top** values come from daily rollups: they cover the whole UTC days the range touches
(`top.from`, `top.to`), which with interval=hour may be more than the series. Sorted by
clicks, most first, then by value; `top` values per dimension.
"""
)

SUMMARY = (
    _RANGE.format(default="30 days", unit="UTC days", most="1,096 days (3 years)")
    + """
Totals over the caller's links (an admin's: every link), deleted links left out.
`uniques` is the sum of each link's daily uniques (visitor-days per link);
`links_clicked` counts the links with at least one click by people in the range, and
`top_links` lists the 10 with the most clicks (ties by code).
"""
)


@router.get(
    "/api/v1/links/{code}/stats",
    operation_id="getLinkStats",
    summary="A link's clicks: totals, a time series and top values",
    description=LINK_STATS,
    responses=responses(
        {200: answer("The link's clicks")},
        _INVALID,
        NOT_FOUND,
        _SCOPE,
        AUTHENTICATED,
        limited=True,
    ),
)
async def get_link_stats(
    code: str,
    principal: StatsRead,
    stats: StatsDep,
    start: From = None,
    end: To = None,
    interval: Interval = "day",
    top: Annotated[int, Query(ge=1, le=100, description="Values per dimension.")] = 10,
    domain: Annotated[
        str | None,
        Query(max_length=300, description="The link's domain (a host); absent: the default."),
    ] = None,
) -> LinkStats:
    span = stats.window(start=start, end=end, interval=interval)
    return await stats.link(principal=principal, code=code, span=span, top=top, domain=domain)


@router.get(
    "/api/v1/stats",
    operation_id="getStatsSummary",
    summary="Clicks across the caller's links",
    description=SUMMARY,
    responses=responses(
        {200: answer("Clicks across the links")}, _INVALID, _SCOPE, AUTHENTICATED, limited=True
    ),
)
async def get_summary(
    principal: StatsRead, stats: StatsDep, start: From = None, end: To = None
) -> StatsSummary:
    span = stats.window(start=start, end=end, interval="day")
    return await stats.summary(principal=principal, span=span)
