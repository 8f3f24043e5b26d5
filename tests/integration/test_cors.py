"""CORS (KURZ_CORS_ORIGINS): browser tools on the listed origins may call /api/ with a
key; no other origin, no other path, and never with credentials; none by default."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from kurz.config import Settings
from tests.conftest import BASE_URL
from tests.integration.links.support import create
from tests.support import FakeClock, running

TOOL = "https://tools.example"
PREFLIGHT = {
    "Origin": TOOL,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
}


def cors_fields(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


@pytest.fixture
async def app(settings: Settings, clock: FakeClock) -> AsyncIterator[FastAPI]:
    allowed = settings.model_copy(update={"cors_origins": (TOOL, "chrome-extension://abcdef")})
    async with running(allowed, clock) as app:
        yield app


async def test_a_preflight_from_an_allowed_origin_is_answered(anon: httpx.AsyncClient) -> None:
    answer = await anon.options("/api/v1/links", headers=PREFLIGHT)
    assert answer.status_code == 204
    fields = cors_fields(answer)
    assert fields.pop("access-control-allow-origin") == TOOL
    methods = fields.pop("access-control-allow-methods").split(", ")
    assert {"GET", "POST", "PATCH", "DELETE"} <= set(methods)
    headers = fields.pop("access-control-allow-headers").lower().split(", ")
    assert headers == [
        "authorization",
        "content-type",
        "idempotency-key",
        "if-match",
        "x-csrf-token",
    ]
    assert int(fields.pop("access-control-max-age")) > 0
    assert fields == {}
    assert answer.headers["vary"] == "Origin"


async def test_an_allowed_origin_reads_the_answers_and_their_fields(
    api: httpx.AsyncClient,
) -> None:
    made = await api.post("/api/v1/links", json={"url": "https://e.com/"}, headers={"Origin": TOOL})
    assert made.status_code == 201
    assert made.headers["access-control-allow-origin"] == TOOL
    exposed = made.headers["access-control-expose-headers"].split(", ")
    assert exposed == [
        "ETag",
        "Location",
        "RateLimit",
        "RateLimit-Policy",
        "Retry-After",
        "Idempotent-Replayed",
    ]
    assert "Origin" in made.headers["vary"]
    # A refusal too, or the script could not tell why.
    refused = await api.get("/api/v1/links/nosuch", headers={"Origin": TOOL.upper()})
    assert refused.status_code == 404
    assert refused.headers["access-control-allow-origin"] == TOOL.upper()


async def test_another_origin_gets_no_cors_fields(api: httpx.AsyncClient) -> None:
    for origin in ("https://evil.example", "https://tools.example:8443", "null", BASE_URL):
        preflight = await api.options("/api/v1/links", headers={**PREFLIGHT, "Origin": origin})
        assert preflight.status_code == 405
        assert preflight.headers["content-type"] == "application/problem+json"
        assert cors_fields(preflight) == {}
        listed = await api.get("/api/v1/links", headers={"Origin": origin})
        assert listed.status_code == 200
        assert cors_fields(listed) == {}


async def test_only_api_paths_and_never_credentials(
    api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    code = (await create(api))["code"]
    answers = [
        await anon.options("/api/v1/links", headers=PREFLIGHT),
        await api.get("/api/v1/links", headers={"Origin": TOOL}),
        await anon.get("/api/v1/links", headers={"Origin": TOOL, "Cookie": "kurz_session=x"}),
    ]
    assert all(cors_fields(answer) for answer in answers)
    outside = [
        await anon.get("/healthz", headers={"Origin": TOOL}),
        await anon.options("/healthz", headers=PREFLIGHT),
        await api.get("/metrics", headers={"Origin": TOOL}),
        # Twice: through the route, then from L1 before any middleware.
        await anon.get(f"/{code}", headers={"Origin": TOOL}),
        await anon.get(f"/{code}", headers={"Origin": TOOL}),
    ]
    assert [cors_fields(answer) for answer in outside] == [{}] * len(outside)
    assert not any("access-control-allow-credentials" in a.headers for a in answers + outside)


async def test_no_origin_is_allowed_by_default(settings: Settings, clock: FakeClock) -> None:
    assert settings.cors_origins == ()
    async with running(settings, clock) as plain:
        transport = httpx.ASGITransport(app=plain)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as anon:
            preflight = await anon.options("/api/v1/links", headers=PREFLIGHT)
            assert preflight.status_code == 405
            assert cors_fields(preflight) == {}
            listed = await anon.get("/api/v1/links", headers={"Origin": TOOL})
            assert listed.status_code == 401
            assert cors_fields(listed) == {}
