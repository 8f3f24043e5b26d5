"""The redirect pipeline does each step of a visit once: one read of the database for an
uncached code, one reckoning of the client's address (issue 19's defects)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from kurz.app import create_app
from kurz.bootstrap import build
from kurz.config import Settings
from kurz.db import Database, upgrade
from kurz.limits import ServiceLimits
from tests.conftest import BASE_URL, NO_LIMITS, KeyMaker
from tests.integration.links.support import create
from tests.support import FakeClock, PostgresServer


def count_reads(app: FastAPI) -> list[int]:
    """Counts the read transactions the app's database opens from now on."""
    db = app.state.kurz.db
    opened = [0]
    read: Callable[..., AbstractAsyncContextManager[Any]] = db.read

    def counted(*args: Any, **kwargs: Any) -> AbstractAsyncContextManager[Any]:
        opened[0] += 1
        return read(*args, **kwargs)

    db.read = counted
    return opened


async def test_an_uncached_redirect_reads_the_database_once_while_it_is_down(
    own_postgres: PostgresServer, clock: FakeClock
) -> None:
    db = Database.from_url(own_postgres.url)
    try:
        await upgrade(db)
    finally:
        await db.dispose()
    ours = Settings.model_validate(
        {"database_url": own_postgres.url, "base_url": BASE_URL, "embedded_worker": False,
         "analytics": False, **NO_LIMITS}
    )  # fmt: skip
    app = create_app(build(ours, clock=clock))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as anon:
            opened = count_reads(app)
            own_postgres.stop()
            answer = await anon.get("/uncached")
            assert answer.status_code == 503, answer.text
            assert answer.headers["content-type"] == "application/problem+json"
            assert opened[0] == 1
            # The page a browser gets says so too, from the same one read.
            opened[0] = 0
            page = await anon.get("/other", headers={"Accept": "text/html"})
            assert (page.status_code, opened[0]) == (503, 1)


@pytest.fixture
def counted_addresses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts how often any ServiceLimits works out a client's address."""
    calls = [0]
    original = ServiceLimits.client_ip

    def client_ip(self: ServiceLimits, scope: Any) -> str:
        calls[0] += 1
        return original(self, scope)

    monkeypatch.setattr(ServiceLimits, "client_ip", client_ip)
    return calls


@pytest.fixture
async def counting_app(
    settings: Settings, clock: FakeClock, counted_addresses: list[int]
) -> AsyncIterator[FastAPI]:
    limited = settings.model_copy(
        update={
            "ratelimit_redirect": "1000/60s",
            "analytics": True,
            "trusted_proxies": ("10.0.0.0/8",),
        }
    )
    app = create_app(build(Settings.model_validate(limited.model_dump()), clock=clock))
    async with app.router.lifespan_context(app):
        yield app


async def test_a_redirect_works_out_its_client_address_once(
    counting_app: FastAPI, counted_addresses: list[int], make_key: KeyMaker
) -> None:
    transport = httpx.ASGITransport(app=counting_app, client=("10.1.2.3", 4000))
    headers = {"X-Forwarded-For": "203.0.113.5"}
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        secret = await make_key("alice")
        client.headers["Authorization"] = f"Bearer {secret}"
        code = (await create(client))["code"]
        # An L1 miss (the slow path through the tiers), then an L1 hit (the fast path).
        for _ in range(2):
            counted_addresses[0] = 0
            answer = await client.get(f"/{code}", headers=headers)
            assert answer.status_code == 302
            assert counted_addresses[0] == 1
    queued = counting_app.state.kurz.analytics.queue
    assert len(queued) == 2
