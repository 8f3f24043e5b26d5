"""Redirects queue clicks without waiting; a graceful stop writes every one of them."""

from __future__ import annotations

import asyncio

import httpx
import sqlalchemy as sa

from kurz.app import create_app
from kurz.auth import queries as key_queries
from kurz.auth.models import ApiKeyCreate
from kurz.bootstrap import build
from kurz.clock import utcnow
from kurz.config import Settings
from kurz.db import READ_COMMITTED, Database
from kurz.db.tables import link_breakdowns_daily, link_clicks_hourly
from tests.conftest import BASE_URL
from tests.integration.links.support import create
from tests.support import FakeClock

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


async def test_every_redirect_is_counted_once_after_a_graceful_stop(
    settings: Settings, clock: FakeClock
) -> None:
    app = create_app(build(settings.model_copy(update={"analytics": True}), clock=clock))
    async with app.router.lifespan_context(app):
        state = app.state.kurz
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as anon:
            async with state.db.write(READ_COMMITTED) as conn:
                created = await key_queries.create(
                    conn=conn, key_in=ApiKeyCreate(name="t"), now=utcnow(clock)
                )
            api = httpx.AsyncClient(
                transport=transport,
                base_url=BASE_URL,
                headers={"Authorization": f"Bearer {created.secret}"},
            )
            link = await create(api)
            capped = await create(api, max_visits=1_000)
            await api.aclose()
            people = {"User-Agent": BROWSER, "Referer": "https://www.news.example/a"}
            bots = {"User-Agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"}
            answers = await asyncio.gather(
                *(anon.get(f"/{link['code']}", headers=people) for _ in range(300)),
                *(anon.get(f"/{link['code']}", headers=bots) for _ in range(20)),
                *(anon.head(f"/{link['code']}", headers=people) for _ in range(10)),
                *(anon.get(f"/{capped['code']}", headers=people) for _ in range(30)),
            )
            assert {answer.status_code for answer in answers} == {302}
        db: Database = state.db
        engine_url = str(db.engine.url)
    # The lifespan has ended: the drainer wrote everything before the engine closed.
    reader = Database.from_url(engine_url)
    try:
        async with reader.read() as conn:
            totals = (
                await conn.execute(
                    sa.select(
                        link_clicks_hourly.c.link_id,
                        sa.func.sum(link_clicks_hourly.c.clicks),
                        sa.func.sum(link_clicks_hourly.c.bot_clicks),
                    ).group_by(link_clicks_hourly.c.link_id)
                )
            ).all()
            referrers = (
                await conn.execute(
                    sa.select(link_breakdowns_daily.c.value, link_breakdowns_daily.c.clicks).where(
                        link_breakdowns_daily.c.dimension == "referrer"
                    )
                )
            ).all()
    finally:
        await reader.dispose()
    # People and bots per link: HEADs are not clicks, and the capped link (answered by
    # the `follow` route, not the fast path) counts too.
    per_link = sorted((int(people_n), int(bot_n)) for _, people_n, bot_n in totals)
    assert per_link == [(30, 0), (300, 20)]
    # "www." is dropped from the referrer; one row per link and day.
    assert sorted((value, int(n)) for value, n in referrers) == [
        ("news.example", 30),
        ("news.example", 300),
    ]
