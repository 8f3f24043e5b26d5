"""A click carries the variant its visit was sent to, and a link's stats break people's
clicks down by variant (on SQLite and PostgreSQL)."""

from __future__ import annotations

from collections import Counter
from random import Random

import httpx
import sqlalchemy as sa

from kurz.app import create_app
from kurz.auth import queries as key_queries
from kurz.auth.models import ApiKeyCreate
from kurz.bootstrap import build
from kurz.clock import utcnow
from kurz.config import Settings
from kurz.db import READ_COMMITTED
from kurz.db.tables import link_breakdowns_daily
from kurz.links.target import Target
from tests.conftest import BASE_URL
from tests.integration.links.support import create
from tests.support import FakeClock, running

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
BOT = "Googlebot/2.1 (+http://www.google.com/bot.html)"
A, B = "https://a.example/", "https://b.example/"


async def test_clicks_are_counted_by_the_variant_they_were_sent_to(
    settings: Settings, clock: FakeClock
) -> None:
    app = create_app(build(settings.model_copy(update={"analytics": True}), clock=clock))
    async with app.router.lifespan_context(app):
        state = app.state.kurz
        async with state.db.write(READ_COMMITTED) as conn:
            created = await key_queries.create(
                conn=conn, key_in=ApiKeyCreate(name="t"), now=utcnow(clock)
            )
        secret = created.secret
        transport = httpx.ASGITransport(app=app)
        auth = {"Authorization": f"Bearer {secret}"}
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as anon:
            api = httpx.AsyncClient(transport=transport, base_url=BASE_URL, headers=auth)
            link = await create(api, variants=[{"url": A, "weight": 3}, {"url": B, "weight": 1}])
            plain = await create(api)
            await api.aclose()
            code = link["code"]
            target = await state.targets.find(code, counted=False)
            assert isinstance(target, Target)
            assert target.variants is not None
            state.visits.random = Random(5).random
            draws = Random(5).random
            expected: Counter[str] = Counter()
            # One at a time, so that the draws are taken in the order made here.
            for i in range(120):
                bot = i % 10 == 9
                answer = await anon.get(f"/{code}", headers={"User-Agent": BOT if bot else BROWSER})
                chosen = target.variants.pick(draws()).url
                assert answer.headers["location"] == chosen
                if not bot:  # bots are counted apart, by name only
                    expected[chosen] += 1
            # A HEAD is sent to a variant, and is no click.
            head = await anon.head(f"/{code}", headers={"User-Agent": BROWSER})
            assert head.headers["location"] == target.variants.pick(draws()).url
            people = {"User-Agent": BROWSER}
            assert (await anon.get(f"/{plain['code']}", headers=people)).status_code == 302
    assert set(expected) == {A, B}

    # The lifespan has ended, every click written: another app reads the stats.
    async with running(settings, clock) as reader:
        async with reader.state.kurz.db.read() as conn:
            rows = await conn.execute(
                sa.select(link_breakdowns_daily.c.link_id).where(
                    link_breakdowns_daily.c.dimension == "variant"
                )
            )
            # Only the link with variants has rows of the dimension.
            assert {row.link_id for row in rows} == {target.link_id}
        transport = httpx.ASGITransport(app=reader)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, headers=auth) as api:
            day = {"from": clock.iso(), "to": clock.iso(86_400), "interval": "day"}
            stats = (await api.get(f"/api/v1/links/{code}/stats", params=day)).json()
            other = (await api.get(f"/api/v1/links/{plain['code']}/stats", params=day)).json()
    assert stats["top"]["variant"] == [
        {"value": url, "clicks": n} for url, n in expected.most_common()
    ]
    assert stats["totals"]["clicks"] == sum(expected.values())
    assert other["top"]["variant"] == []
    assert other["totals"]["clicks"] == 1
