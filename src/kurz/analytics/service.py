"""The analytics use cases: a link's click statistics, as REST and gRPC both ask them."""

from __future__ import annotations

from kurz.analytics import stats
from kurz.analytics.models import LinkStats
from kurz.auth.models import Principal
from kurz.db import REPEATABLE_READ, Database
from kurz.links import queries
from kurz.links.service import checked_code


async def link_stats(
    *, db: Database, principal: Principal, code: str, span: stats.Window, top: int
) -> LinkStats:
    checked_code(code)
    # Totals, series and breakdowns from one snapshot: they add up while clicks land.
    async with db.read(REPEATABLE_READ) as conn:
        link_id = await queries.get_id(conn=conn, code=code, principal=principal)
        return await stats.get_link_stats(conn=conn, link_id=link_id, code=code, span=span, top=top)
