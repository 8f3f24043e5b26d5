"""A link's statistics page: its clicks over time by hour or by day, people apart from
bots, and where they came from, as the stats API's use case gives them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request, Response
from markupsafe import Markup

from kurz.analytics.models import Dimension, LinkStats, SeriesPoint, TopValue
from kurz.analytics.service import Stats
from kurz.deps import part
from kurz.links.service import Links
from kurz.web import charts
from kurz.web.render import message, render
from kurz.web.viewer import PageRoute, ViewerDep

router = APIRouter(include_in_schema=False, route_class=PageRoute)
StatsDep = Annotated[Stats, part("stats")]
LinksDep = Annotated[Links, part("links")]

TOP = 10
# The ranges offered, and the longest each interval allows (the API's, in whole days).
CHOICES = (7, 30, 90)
DEFAULT_DAYS: dict[charts.Interval, int] = {"hour": 7, "day": 30}
MOST_DAYS: dict[charts.Interval, int] = {"hour": 31, "day": 1_096}

# Each breakdown: its heading, what a value is, and whose clicks its shares are of.
BREAKDOWNS: tuple[tuple[Dimension, str, str], ...] = (
    ("referrer", "Referrers", "Referrer"),
    ("country", "Countries", "Country"),
    ("city", "Cities", "City"),
    ("device", "Devices", "Device"),
    ("browser", "Browsers", "Browser"),
    ("os", "Operating systems", "Operating system"),
    ("variant", "Variants", "Variant URL"),
    ("bot", "Bots", "Bot"),
)


def link_path(code: str, domain: str | None = None) -> str:
    """A link's page in the web app (`?domain=` for a link on another domain)."""
    path = f"/_/links/{quote(code, safe='')}"
    return f"{path}?{urlencode({'domain': domain})}" if domain else path


class BadRange(ValueError):
    """A query that names no range the page can show; its message says why."""


@dataclass(frozen=True, slots=True)
class Range:
    """The days a page asks for: the last `days`, or from `first` to `last`."""

    by: charts.Interval
    days: int | None
    first: date | None
    last: date | None


def _date(name: str, text: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadRange(f"“{name}” is not a date like 2026-12-04.") from None


def parse_range(
    by: charts.Interval, days: int | None, first_text: str, last_text: str, today: date
) -> Range:
    """The range a stats page's query asks for; BadRange if it names none."""
    most = MOST_DAYS[by]
    first, last = _date("from", first_text), _date("to", last_text)
    if first is None and last is None:
        days = DEFAULT_DAYS[by] if days is None else days
        if days > most:
            raise BadRange(f"Clicks by {by} cover at most {most:,} days; choose fewer days.")
        return Range(by, days, None, None)
    last = last or today
    if first is None:
        first = last - timedelta(days=DEFAULT_DAYS[by] - 1)
    if first > last:
        raise BadRange("“from” must not be after “to”.")
    if (last - first).days + 1 > most:
        raise BadRange(f"Clicks by {by} cover at most {most:,} days; choose a shorter range.")
    if last >= date.max - timedelta(days=1):
        raise BadRange("“to” is out of range.")
    return Range(by, None, first, last)


@dataclass(frozen=True, slots=True)
class Share:
    value: str
    clicks: int
    percent: str
    bar: Markup


@dataclass(frozen=True, slots=True)
class Breakdown:
    key: str
    heading: str
    label: str
    rows: list[Share]


def _shares(values: list[TopValue], total: int) -> list[Share]:
    return [
        Share(
            value.value,
            value.clicks,
            _percent(value.clicks, total),
            charts.share_bar(value.clicks / total if total else 0.0),
        )
        for value in values
    ]


def _percent(part_: int, whole: int) -> str:
    if not whole:
        return "0%"
    share = part_ / whole * 100
    return f"{share:.0f}%" if share >= 10 or share == 0 else f"{share:.1f}%"


def breakdowns(result: LinkStats, with_variants: bool) -> list[Breakdown]:
    """The tables of top values, each with its share of people's (bots': of bots') clicks."""
    found = []
    for key, heading, label in BREAKDOWNS:
        values: list[TopValue] = getattr(result.top, key)
        if key == "variant" and not (with_variants or values):
            continue
        total = result.totals.bot_clicks if key == "bot" else result.totals.clicks
        found.append(Breakdown(key, heading, label, _shares(values, total)))
    return found


def series_chart(
    series: list[SeriesPoint], by: charts.Interval, *, chart_id: str, title: str
) -> Markup:
    return charts.time_series(
        [(point.at, point.clicks) for point in series], by, chart_id=chart_id, title=title
    )


def _keep(asked: Range, by: charts.Interval) -> dict[str, object]:
    """The range `asked` as another interval's query has it, if that interval allows it,
    else that interval's default."""
    if asked.first is not None and asked.last is not None:
        if (asked.last - asked.first).days < MOST_DAYS[by]:
            return {"from": asked.first, "to": asked.last}
    elif asked.days is not None and asked.days <= MOST_DAYS[by]:
        return {"days": asked.days}
    return {"days": DEFAULT_DAYS[by]}


def series_table(series: list[SeriesPoint], by: charts.Interval) -> Markup:
    return charts.table_body([(p.at, p.clicks, p.uniques, p.bot_clicks) for p in series], by)


def _query(**params: object) -> str:
    return urlencode({name: str(value) for name, value in params.items() if value})


Toggle = tuple[str, str, bool]
INTERVALS: tuple[tuple[charts.Interval, str], ...] = (("day", "By day"), ("hour", "By hour"))


def by_links(here: str, asked: Range, domain: str) -> list[Toggle]:
    """The interval toggle: each interval's page, over the same range if it allows it."""
    return [
        (label, f"{here}?{_query(by=by, **_keep(asked, by), domain=domain)}", by == asked.by)
        for by, label in INTERVALS
    ]


def day_links(here: str, asked: Range, domain: str) -> list[Toggle]:
    """The range toggle: the last 7, 30 or 90 days, as the interval allows."""
    return [
        (f"{n} days", f"{here}?{_query(by=asked.by, days=n, domain=domain)}", asked.days == n)
        for n in CHOICES
        if n <= MOST_DAYS[asked.by]
    ]


@router.get("/_/links/{code}/stats")
async def link_stats(
    request: Request,
    code: str,
    viewer: ViewerDep,
    stats: StatsDep,
    links: LinksDep,
    by: Literal["hour", "day"] = "day",
    days: Annotated[int | None, Query(ge=1, le=MOST_DAYS["day"])] = None,
    first: Annotated[str, Query(alias="from", max_length=10)] = "",
    last: Annotated[str, Query(alias="to", max_length=10)] = "",
    domain: Annotated[str, Query(max_length=300)] = "",
) -> Response:
    try:
        asked = parse_range(by, days, first, last, stats.today())
    except BadRange as bad:
        return message(request, "Bad request", str(bad), 400, error=True)
    link = await links.get(principal=viewer.principal, code=code, domain=domain or None)
    if asked.days is not None:
        span = stats.recent(days=asked.days, interval=by)
    else:
        assert asked.first is not None
        assert asked.last is not None
        span = stats.days(first=asked.first, last=asked.last, interval=by)
    result = await stats.link(
        principal=viewer.principal, code=code, span=span, top=TOP, domain=domain or None
    )
    here = f"/_/links/{quote(code, safe='')}/stats"
    totals = result.totals
    return render(
        request,
        "stats/link.html",
        title=link.og_title or link.short_url,
        nav="links",
        wide=True,
        link=link,
        link_page=link_path(code, domain),
        here=here,
        domain=domain,
        asked=asked,
        by_links=by_links(here, asked, domain),
        day_links=day_links(here, asked, domain),
        shown_first=result.start.date(),
        shown_last=(result.end - timedelta(microseconds=1)).date(),
        chart=series_chart(
            result.series, by, chart_id="clicks-chart", title=f"People's clicks by {by}"
        ),
        rows=series_table(result.series, by),
        when=charts.when,
        totals=totals,
        people_share=_percent(totals.clicks, totals.clicks + totals.bot_clicks),
        bot_share=_percent(totals.bot_clicks, totals.clicks + totals.bot_clicks),
        breakdowns=breakdowns(result, bool(link.variants)),
    )
