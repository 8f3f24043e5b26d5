"""API keys at the door: no key or a wrong one is a 401, a revoked one too (at once, or
once a cached check expires); a key's last use is noted, at most once a minute, on
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from kurz.app import create_app
from kurz.auth import queries as key_queries
from kurz.bootstrap import build
from kurz.clock import utcnow
from kurz.config import Settings
from kurz.db import READ_COMMITTED, Database
from kurz.db.tables import api_keys
from tests.conftest import BASE_URL, KeyMaker
from tests.integration.links.support import create
from tests.support import FakeClock

PROBLEM = "application/problem+json"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/links"),
        ("GET", "/api/v1/links"),
        ("GET", "/api/v1/links/abc"),
        ("PATCH", "/api/v1/links/abc"),
        ("DELETE", "/api/v1/links/abc"),
    ],
)
async def test_every_api_route_needs_a_key(anon: httpx.AsyncClient, method: str, path: str) -> None:
    response = await anon.request(method, path, json={"url": "https://e.com"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == PROBLEM
    wrong = await anon.request(
        method, path, json={"url": "https://e.com"}, headers={"Authorization": "Bearer kurz_x"}
    )
    assert wrong.status_code == 401


async def test_revoked_key_gets_401(api: httpx.AsyncClient, app: Any) -> None:

    assert (await api.get("/api/v1/links")).status_code == 200
    async with app.state.kurz.db.write(READ_COMMITTED) as conn:
        keys = await key_queries.list_(conn=conn)
        assert await key_queries.revoke(
            conn=conn, key_id=keys[0].id, now=utcnow(app.state.kurz.clock)
        )
    assert (await api.get("/api/v1/links")).status_code == 401


async def test_with_an_auth_cache_a_revoked_key_is_refused_once_its_entry_expires(
    settings: Settings, clock: FakeClock, make_key: KeyMaker, db: Database
) -> None:
    secret = await make_key("cached")
    cached = create_app(build(settings.model_copy(update={"auth_cache_ttl": 5.0}), clock=clock))
    async with cached.router.lifespan_context(cached):
        transport = httpx.ASGITransport(app=cached)
        headers = {"Authorization": f"Bearer {secret}"}
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, headers=headers) as c:
            assert (await c.get("/api/v1/links")).status_code == 200
            async with db.write(READ_COMMITTED) as conn:
                key_id = next(
                    k.id for k in await key_queries.list_(conn=conn) if k.name == "cached"
                )
                assert await key_queries.revoke(conn=conn, key_id=key_id, now=utcnow(clock))
            # Trusted from memory for the cache's lifetime, then looked up again.
            assert (await c.get("/api/v1/links")).status_code == 200
            clock.advance(5.1)
            assert (await c.get("/api/v1/links")).status_code == 401


async def last_used(db: Database) -> datetime | None:
    async with db.read() as conn:
        found: datetime | None = (
            await conn.execute(sa.select(api_keys.c.last_used_at))
        ).scalar_one()
        return found


async def test_last_used_is_written_by_api_calls_at_most_once_a_minute_and_never_by_redirects(
    api: httpx.AsyncClient, anon: httpx.AsyncClient, db: Database, clock: FakeClock
) -> None:
    start = utcnow(clock)
    assert await last_used(db) is None
    code = (await create(api))["code"]
    assert await last_used(db) == start
    clock.advance(59)
    assert (await api.get("/api/v1/links")).status_code == 200
    assert await last_used(db) == start
    clock.advance(1)
    assert (await api.get("/api/v1/links")).status_code == 200
    assert await last_used(db) == start + timedelta(minutes=1)

    clock.advance(120)
    # Through the route (an L1 miss), then the fast path; the key sent along is no API
    # call, and the redirect path never looks at it.
    for _ in range(2):
        followed = await anon.get(f"/{code}", headers=dict(api.headers))
        assert followed.status_code == 302
    assert await last_used(db) == start + timedelta(minutes=1)
    assert (await api.get("/api/v1/links")).status_code == 200
    assert await last_used(db) == start + timedelta(minutes=3)
