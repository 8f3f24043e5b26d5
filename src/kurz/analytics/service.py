"""The analytics use cases: click statistics, as REST and gRPC both ask them."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from kurz.analytics import overview, stats
from kurz.analytics.models import Interval, LinkStats, Overview, StatsSummary
from kurz.analytics.settled import SettledSums
from kurz.auth.models import Principal
from kurz.clock import utcnow
from kurz.db import REPEATABLE_READ, Database
from kurz.errors import invalid, not_found
from kurz.links import domains, queries
from kurz.links.service import checked_code
from kurz.types import Clock


class Stats:
    """Statistics of the links a principal may see, over a range of time."""

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        default_host: str = "",
        keep_settled: bool = True,
    ) -> None:
        self.db = db
        self.clock = clock
        # KURZ_BASE_URL's host: the default domain, as a `domain` may name it.
        self.default_host = default_host
        # The links' breakdowns over days before today, summed (kurz.analytics.settled);
        # without them, the database sums every row of a range on each request.
        self.settled: SettledSums | None = SettledSums() if keep_settled else None

    def window(
        self, *, start: datetime | None, end: datetime | None, interval: Interval
    ) -> stats.Window:
        """The range asked for, widened to whole hours or days (a 422 if it cannot be)."""
        return stats.window(start=start, end=end, interval=interval, now=utcnow(self.clock))

    def today(self) -> date:
        """Today's UTC date."""
        return utcnow(self.clock).date()

    def days(self, *, first: date, last: date, interval: Interval) -> stats.Window:
        """The UTC days `first` to `last`, both included; by hour, a range that holds
        this hour ends with it (the hours after it have no clicks yet)."""
        try:
            start = datetime.combine(first, time(), UTC)
            end = datetime.combine(last, time(), UTC) + stats.DAY
        except OverflowError:
            raise invalid("to", "is out of range", location="query") from None
        if interval == "hour":
            now = utcnow(self.clock)
            this_hour = now - (now - start) % stats.HOUR
            if start <= this_hour < end:
                end = this_hour + stats.HOUR
        return self.window(start=start, end=end, interval=interval)

    def recent(self, *, days: int, interval: Interval) -> stats.Window:
        """The last `days` UTC days, today (so far) included."""
        today = self.today()
        return self.days(first=today - (days - 1) * stats.DAY, last=today, interval=interval)

    async def link(
        self,
        *,
        principal: Principal,
        code: str,
        span: stats.Window,
        top: int,
        domain: str | None = None,
    ) -> LinkStats:
        """One link's totals, series and top values."""
        checked_code(code)
        # Totals, series and breakdowns from one snapshot: they add up while clicks land.
        async with self.db.read(REPEATABLE_READ) as conn:
            domain_id = await domains.id_of(conn, domain, default_host=self.default_host)
            if domain_id is None:
                raise not_found(f"No link with code '{code[:64]}' on domain '{domain}'.")
            link_id = await queries.get_id(
                conn=conn, code=code, principal=principal, domain_id=domain_id
            )
            return await stats.get_link_stats(
                conn=conn,
                link_id=link_id,
                code=code,
                span=span,
                top=top,
                settled=self.settled,
                today=datetime.combine(self.today(), time(), UTC),
            )

    async def summary(self, *, principal: Principal, span: stats.Window) -> StatsSummary:
        """Clicks across the principal's links."""
        async with self.db.read() as conn:
            return await stats.get_summary(conn=conn, principal=principal, span=span)

    async def overview(self, *, principal: Principal, span: stats.Window) -> Overview:
        """The principal's own links at a glance (an admin's own too, not everyone's):
        clicks by day over `span` (a range of days), the most clicked, the newest."""
        async with self.db.read(REPEATABLE_READ) as conn:
            return await overview.get_overview(
                conn=conn, user_id=principal.user_id, span=span, default_host=self.default_host
            )
