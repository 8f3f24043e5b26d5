"""GET /metrics: the click pipeline's and the invalidation bus's counters, for keys with
metrics:read only."""

from __future__ import annotations

import httpx

from kurz.analytics.events import click_event
from kurz.app import create_app
from kurz.auth import queries as key_queries
from kurz.auth.models import ApiKeyCreate, scopes_for
from kurz.bootstrap import build
from kurz.clock import utcnow
from kurz.config import Settings
from kurz.db import READ_COMMITTED
from tests.conftest import BASE_URL
from tests.integration.cache.test_nodes import until
from tests.integration.links.support import create
from tests.support import FakeClock, RedisServer


async def test_admins_read_the_click_counters_and_others_are_refused(
    settings: Settings, clock: FakeClock
) -> None:
    app = create_app(
        build(
            settings.model_copy(update={"analytics": True, "analytics_queue_size": 100}),
            clock=clock,
        )
    )
    async with app.router.lifespan_context(app):
        state = app.state.kurz
        async with state.db.write(READ_COMMITTED) as conn:
            admin = await key_queries.create(
                conn=conn,
                key_in=ApiKeyCreate(name="a", scopes=scopes_for(admin=True)),
                now=utcnow(clock),
            )
            user = await key_queries.create(
                conn=conn, key_in=ApiKeyCreate(name="u"), now=utcnow(clock)
            )
        transport = httpx.ASGITransport(app=app)
        clients = {
            name: httpx.AsyncClient(
                transport=transport,
                base_url=BASE_URL,
                headers={"Authorization": f"Bearer {key.secret}"},
            )
            for name, key in (("admin", admin), ("user", user))
        }
        try:
            link = await create(clients["user"])
            for _ in range(3):
                answer = await clients["user"].get(f"/{link['code']}")
                assert answer.status_code == 302
            # Filled past its 100 places within one turn of the loop, before the
            # drainer can take any: the last five are dropped.
            queue = state.analytics.queue
            event = click_event(
                link_id=1, at=0.0, browser="Firefox", os="Linux", device="desktop", bot=False,
                visitor="v",
            )  # fmt: skip
            accepted = [queue.put(event) for _ in range(len(queue), 105)]
            assert accepted.count(False) == 5

            refused = await clients["user"].get("/metrics")
            assert refused.status_code == 403
            assert refused.headers["content-type"] == "application/problem+json"
            answer = await clients["admin"].get("/metrics")
        finally:
            for client in clients.values():
                await client.aclose()
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    values = {
        line.split()[0]: float(line.split()[1])
        for line in answer.text.splitlines()
        if not line.startswith("#")
    }
    assert values["kurz_clicks_dropped_total"] == 5
    # Three redirects' clicks, and what the queue took of the filling.
    assert values["kurz_clicks_queued_total"] == 3 + accepted.count(True)
    assert "kurz_clicks_backlog" in values


async def test_the_invalidation_bus_counts_what_it_sent_and_heard(
    settings: Settings, clock: FakeClock, redis_nodes: list[RedisServer]
) -> None:
    """What a process sent and heard over the bus, and on how many nodes it listens."""
    urls = [node.url for node in redis_nodes]
    app = create_app(build(settings.model_copy(update={"cache_nodes": urls}), clock=clock))
    async with app.router.lifespan_context(app):
        state = app.state.kurz
        async with state.db.write(READ_COMMITTED) as conn:
            admin = await key_queries.create(
                conn=conn,
                key_in=ApiKeyCreate(name="a", scopes=scopes_for(admin=True)),
                now=utcnow(clock),
            )
        headers = {"Authorization": f"Bearer {admin.secret}"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, headers=headers) as c:

            async def values() -> dict[str, float]:
                answer = await c.get("/metrics")
                assert answer.status_code == 200, answer.text
                return {
                    line.split()[0]: float(line.split()[1])
                    for line in answer.text.splitlines()
                    if not line.startswith("#")
                }

            async def listening_on_every_node() -> bool:
                return (await values())["kurz_cache_subscriptions"] == len(urls)

            await until(listening_on_every_node, "subscribed on every node")
            # A create tells every process, this one included, over every node.
            await create(c)
            sent = (await values())["kurz_cache_invalidations_sent_total"]
            assert sent == len(urls)

            async def heard_it_all() -> bool:
                return (await values())["kurz_cache_invalidations_heard_total"] == sent

            await until(heard_it_all, "its own message heard on every node")
