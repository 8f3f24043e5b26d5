"""The probes, and the 503s for a nearly full disk and for a pool with no free connection."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from kurz.app import KurzApp, create_app
from kurz.auth import queries as key_queries
from kurz.auth.models import ApiKeyCreate
from kurz.bootstrap import build
from kurz.clock import utcnow
from kurz.config import Settings
from kurz.db import READ_COMMITTED, Database
from tests.conftest import BASE_URL
from tests.support import FakeClock

PROBLEM = "application/problem+json"


@asynccontextmanager
async def serving(settings: Settings, clock: FakeClock, **changes: Any) -> AsyncIterator[KurzApp]:
    app = create_app(build(settings.model_copy(update=changes), clock=clock))
    async with app.router.lifespan_context(app):
        yield app


def client(app: KurzApp, secret: str = "") -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL, headers=headers
    )


async def test_ready_and_alive(anon: httpx.AsyncClient) -> None:
    assert (await anon.get("/healthz")).json() == {"status": "ok"}
    assert (await anon.get("/readyz")).json() == {"status": "ready"}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_not_ready_when_the_databases_disk_is_nearly_full(
    settings: Settings, clock: FakeClock
) -> None:
    # The real free space of the disk the test database is on, and a minimum above it.
    folder = Path(str(make_url(settings.database_url).database)).parent
    total = shutil.disk_usage(folder).total
    async with serving(settings, clock, ready_min_free_bytes=total + 1) as app, client(app) as c:
        response = await c.get("/readyz")
        assert response.status_code == 503
        assert response.headers["content-type"] == PROBLEM
        problem = response.json()
        assert problem["type"] == "/problems/not-ready"
        assert "disk" in problem["detail"]
        assert "KURZ_READY_MIN_FREE_BYTES" in problem["detail"]
        assert (await c.head("/readyz")).status_code == 503
    async with serving(settings, clock, ready_min_free_bytes=1) as app, client(app) as c:
        assert (await c.get("/readyz")).status_code == 200


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_postgresqls_disk_is_not_kurzs_to_see(settings: Settings, clock: FakeClock) -> None:
    # The server's disk is on another machine: kurz does not pretend to know it
    # (docs/capacity.md says what to watch instead).
    async with serving(settings, clock, ready_min_free_bytes=2**62) as app, client(app) as c:
        assert (await c.get("/readyz")).status_code == 200


async def _new_key(db: Database, clock: FakeClock) -> str:
    async with db.write(READ_COMMITTED) as conn:
        created = await key_queries.create(
            conn=conn, key_in=ApiKeyCreate(name="busy"), now=utcnow(clock)
        )
    return created.secret


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_pool_with_every_connection_taken_is_a_503_saying_so(
    settings: Settings, clock: FakeClock
) -> None:
    async with (
        serving(settings, clock, database_pool_size=1, database_pool_timeout=0.05) as app,
        client(app, await _new_key(app.state.kurz.db, clock)) as api,
    ):
        db: Database = app.state.kurz.db
        async with AsyncExitStack() as held:
            # One kept open and as many again under load: two, both taken here.
            for _ in range(2):
                _ = await held.enter_async_context(db.engine.connect())
            for response in (await api.get("/api/v1/links"), await api.get("/readyz")):
                assert response.status_code == 503
                assert response.headers["content-type"] == PROBLEM
                assert response.headers["retry-after"] == "1"
                assert "all 2 database connections are busy" in response.json()["detail"].lower()
            assert (await api.get("/api/v1/links")).json()["type"] == "/problems/database-busy"
        assert (await api.get("/api/v1/links")).status_code == 200
        assert (await api.get("/readyz")).status_code == 200
