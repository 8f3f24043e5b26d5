"""The dashboard (/_/): what a signed-in user sees first. Their own links only, an
admin's too (every link is on the links page): clicks over the last 30 days, the most
clicked links of all time, and the newest links."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from kurz.web import charts
from kurz.web.render import render
from kurz.web.stats_pages import StatsDep, link_path, series_chart, series_table
from kurz.web.viewer import PageRoute, ViewerDep

router = APIRouter(include_in_schema=False, route_class=PageRoute)
DAYS = 30


@router.get("/_/dashboard")
async def dashboard(request: Request, viewer: ViewerDep, stats: StatsDep) -> Response:
    span = stats.recent(days=DAYS, interval="day")
    overview = await stats.overview(principal=viewer.principal, span=span)
    return render(
        request,
        "dashboard.html",
        title="Dashboard",
        nav="dashboard",
        wide=True,
        days=DAYS,
        overview=overview,
        chart=series_chart(
            overview.series, "day", chart_id="dashboard-chart", title="Your links' clicks by day"
        ),
        rows=series_table(overview.series, "day"),
        when=charts.when,
        top_links=[(link, link_path(link.code, link.domain)) for link in overview.top_links],
        recent_links=[(link, link_path(link.code, link.domain)) for link in overview.recent_links],
    )
