"""Every route asks for its scope: a key without it gets 403 insufficient-scope, and
nothing is done. Embedded (SQLite) and scaled out (PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
import sqlalchemy as sa

from kurz.auth.models import SCOPES, Scope
from kurz.config import Settings
from kurz.db import Database
from kurz.db.tables import links
from tests.conftest import Deployment
from tests.integration.auth.support import admin, member, new_key
from tests.integration.links.support import create
from tests.support import FakeClock

Clients = Callable[[str], httpx.AsyncClient]

# Each route and the one scope it needs.
ROUTES: list[tuple[str, str, Scope]] = [
    ("POST", "/api/v1/links", "links:write"),
    ("PATCH", "/api/v1/links/{code}", "links:write"),
    ("DELETE", "/api/v1/links/{code}", "links:write"),
    ("GET", "/api/v1/links", "links:read"),
    ("GET", "/api/v1/links/{code}", "links:read"),
    ("GET", "/api/v1/links/{code}/stats", "stats:read"),
    ("GET", "/api/v1/stats", "stats:read"),
    ("GET", "/metrics", "metrics:read"),
]


@pytest.fixture
def settings(deployment: Deployment) -> Settings:
    return deployment.settings()


async def live_links(db: Database) -> int:
    async with db.read() as conn:
        query = sa.select(sa.func.count()).where(links.c.deleted_at.is_(None))
        return int((await conn.execute(query)).scalar_one())


@pytest.mark.parametrize(("method", "path", "needed"), ROUTES)
async def test_a_key_without_the_routes_scope_is_refused_and_with_it_let_in(
    db: Database, clock: FakeClock, client_for: Clients, method: str, path: str, needed: Scope
) -> None:
    root = await admin(db, clock, "root@example.com")
    async with client_for(root.secret) as api:
        code = (await create(api, url="https://example.com/kept"))["code"]
    others = [scope for scope in SCOPES if scope != needed]
    without = await new_key(db, clock, root.user_id, others, name="without")
    only = await new_key(db, clock, root.user_id, [needed], name="only")
    url = path.format(code=code)
    body = {"url": "https://example.com/changed"}
    headers = {"If-Match": "*"}
    async with client_for(without.secret) as lacking, client_for(only.secret) as scoped:
        refused = await lacking.request(method, url, json=body, headers=headers)
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"] == "/problems/insufficient-scope"
        assert refused.json()["required_scope"] == needed
        assert await live_links(db) == 1
        allowed = await scoped.request(method, url, json=body, headers=headers)
        assert allowed.status_code < 300, allowed.text


async def test_metrics_take_a_metrics_key_that_can_do_nothing_else(
    db: Database, clock: FakeClock, client_for: Clients
) -> None:
    root = await admin(db, clock, "root@example.com")
    scraper = await new_key(db, clock, root.user_id, ["metrics:read"], name="prometheus")
    links_key = await new_key(db, clock, root.user_id, ["links:read", "links:write"])
    async with client_for(scraper.secret) as prometheus, client_for(links_key.secret) as api:
        assert (await prometheus.get("/metrics")).status_code == 200
        assert (await api.get("/metrics")).json()["type"] == "/problems/insufficient-scope"
        for response in (
            await prometheus.get("/api/v1/links"),
            await prometheus.post("/api/v1/links", json={"url": "https://example.com/"}),
            await prometheus.get("/api/v1/stats"),
        ):
            assert response.status_code == 403


async def test_a_members_key_stored_with_admin_scopes_gets_none_of_them(
    db: Database, clock: FakeClock, client_for: Clients
) -> None:
    root = await admin(db, clock, "root@example.com")
    async with client_for(root.secret) as api:
        code = (await create(api))["code"]
    alice = await member(db, clock, "alice@example.com")
    forged = await new_key(db, clock, alice.user_id, SCOPES, name="forged")
    async with client_for(forged.secret) as api:
        assert (await api.get("/metrics")).status_code == 403
        assert (await api.get(f"/api/v1/links/{code}")).status_code == 404
        assert (await api.get("/api/v1/links")).json()["items"] == []
