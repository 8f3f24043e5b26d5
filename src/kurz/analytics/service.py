"""The analytics use cases: click statistics, as REST and gRPC both ask them."""

from __future__ import annotations

from datetime import datetime

from kurz.analytics import stats
from kurz.analytics.models import Interval, LinkStats, StatsSummary
from kurz.auth.models import Principal
from kurz.clock import utcnow
from kurz.db import REPEATABLE_READ, Database
from kurz.errors import not_found
from kurz.links import domains, queries
from kurz.links.service import checked_code
from kurz.types import Clock


class Stats:
    """Statistics of the links a principal may see, over a range of time."""

    def __init__(self, *, db: Database, clock: Clock, default_host: str = "") -> None:
        self.db = db
        self.clock = clock
        # KURZ_BASE_URL's host: the default domain, as a `domain` may name it.
        self.default_host = default_host

    def window(
        self, *, start: datetime | None, end: datetime | None, interval: Interval
    ) -> stats.Window:
        """The range asked for, widened to whole hours or days (a 422 if it cannot be)."""
        return stats.window(start=start, end=end, interval=interval, now=utcnow(self.clock))

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
                conn=conn, link_id=link_id, code=code, span=span, top=top
            )

    async def summary(self, *, principal: Principal, span: stats.Window) -> StatsSummary:
        """Clicks across the principal's links."""
        async with self.db.read() as conn:
            return await stats.get_summary(conn=conn, principal=principal, span=span)
