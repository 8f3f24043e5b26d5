"""What the service limits: API calls per key, redirects and failed logins per client IP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI
from http_sfv.list import List as SfList

from kurz.app import create_app
from kurz.bootstrap import build
from kurz.config import Settings
from tests.conftest import BASE_URL, KeyMaker
from tests.integration.links.support import create
from tests.support import FakeClock

PROBLEM = "application/problem+json"


def fields(response: httpx.Response) -> tuple[dict[str, object], dict[str, object]]:
    """The RateLimit-Policy and RateLimit items' parameters, parsed as Structured Fields."""
    parsed = []
    for name in ("ratelimit-policy", "ratelimit"):
        items = SfList()
        items.parse(response.headers[name].encode())
        [item] = items
        parsed.append({"name": item.value, **dict(item.params)})
    return parsed[0], parsed[1]


@pytest.fixture
def limited(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        base_url=BASE_URL,
        ratelimit_api="3/60s;burst=3",
        ratelimit_redirect="2/60s;burst=2",
        ratelimit_auth_fail="2/60s;burst=2",
    )


@pytest.fixture
async def app(limited: Settings, clock: FakeClock) -> AsyncIterator[FastAPI]:
    app = create_app(build(limited, clock=clock))
    async with app.router.lifespan_context(app):
        yield app


async def test_api_calls_are_limited_per_key(
    api: httpx.AsyncClient, make_key: KeyMaker, client_for: Callable[[str], httpx.AsyncClient]
) -> None:
    responses = [await api.get("/api/v1/links") for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    policy, limit = fields(responses[0])
    assert policy == {"name": "api", "q": 3, "w": 60}
    assert limit == {"name": "api", "r": 2, "t": 20}
    refused = responses[-1]
    assert refused.headers["content-type"] == PROBLEM
    body = refused.json()
    assert body["type"] == "/problems/rate-limit/api"
    assert body["violated-policies"] == ["api"]
    _, limit = fields(refused)
    assert limit["r"] == 0
    assert int(refused.headers["retry-after"]) >= limit["t"] == 20  # type: ignore[operator]
    async with client_for(await make_key("other")) as other:
        assert (await other.get("/api/v1/links")).status_code == 200


async def test_tokens_return_with_time(api: httpx.AsyncClient, clock: FakeClock) -> None:
    for _ in range(3):
        await api.get("/api/v1/links")
    assert (await api.get("/api/v1/links")).status_code == 429
    clock.advance(20)
    assert (await api.get("/api/v1/links")).status_code == 200


async def test_redirects_are_limited_per_ip_on_both_paths(
    app: FastAPI, make_key: KeyMaker, client_for: Callable[[str], httpx.AsyncClient],
    anon: httpx.AsyncClient,
) -> None:  # fmt: skip
    async with client_for(await make_key()) as api:
        link = await create(api)
    miss = await anon.get(f"/{link['code']}")  # slow path, fills the cache
    hit = await anon.get(f"/{link['code']}")  # fast path
    assert (miss.status_code, hit.status_code) == (302, 302)
    assert fields(miss)[1] == {"name": "redirect", "r": 1, "t": 30}
    assert fields(hit)[1] == {"name": "redirect", "r": 0, "t": 30}
    refused = await anon.get(f"/{link['code']}")
    assert refused.status_code == 429
    assert refused.json()["type"] == "/problems/rate-limit/redirect"
    assert "location" not in refused.headers
    page = await anon.get(f"/{link['code']}", headers={"Accept": "text/html"})
    assert page.status_code == 429
    assert page.headers["content-type"].startswith("text/html")
    assert int(page.headers["retry-after"]) >= 30
    assert fields(page)[1]["r"] == 0


async def test_unknown_codes_count_against_the_redirect_limit(anon: httpx.AsyncClient) -> None:
    statuses = [(await anon.get(f"/guess{i}")).status_code for i in range(3)]
    assert statuses == [404, 404, 429]


async def test_wrong_keys_are_limited_per_ip_but_right_keys_still_work(
    anon: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    wrong = {"Authorization": "Bearer kurz_wrong"}
    statuses = [(await anon.get("/api/v1/links", headers=wrong)).status_code for _ in range(3)]
    assert statuses == [401, 401, 429]
    refused = await anon.get("/api/v1/links", headers=wrong)
    assert refused.json()["type"] == "/problems/rate-limit/auth-fail"
    assert (await api.get("/api/v1/links")).status_code == 200


async def test_forwarded_for_is_believed_only_from_trusted_proxies(
    database_url: str, clock: FakeClock
) -> None:
    async def statuses(settings: Settings) -> list[int]:
        app = create_app(build(settings, clock=clock))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
            async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
                return [
                    (
                        await client.get("/nope", headers={"X-Forwarded-For": f"203.0.113.{i}"})
                    ).status_code
                    for i in range(4)
                ]

    base = {"database_url": database_url, "base_url": BASE_URL, "ratelimit_redirect": "1/s"}
    untrusted = Settings.model_validate(base)
    assert await statuses(untrusted) == [404, 429, 429, 429]
    trusted = Settings.model_validate({**base, "trusted_proxies": "127.0.0.1"})
    assert await statuses(trusted) == [404, 404, 404, 404]


@pytest.mark.parametrize("accept", ["*/*", "text/html"])
async def test_a_redirect_carries_the_fields_only_near_its_limit(
    database_url: str, clock: FakeClock, make_key: KeyMaker, accept: str
) -> None:
    # ADR 0003: on a 3xx the fields help nobody while the client is far from its
    # limit, so a redirect carries them only once at most half the burst is left. Every
    # other answer does: API calls, the 404 of an unknown code, the 429.
    settings = Settings(
        database_url=database_url,
        base_url=BASE_URL,
        ratelimit_redirect="10/60s;burst=10",
        ratelimit_api="100/60s;burst=100",
    )
    app = create_app(build(settings, clock=clock))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("192.0.2.7", 5000))
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            key = await make_key()
            created = await client.post(
                "/api/v1/links",
                json={"url": "https://example.com/far"},
                headers={"Authorization": f"Bearer {key}"},
            )
            assert created.status_code == 201
            assert fields(created)[1]["r"] == 99  # an API answer, far from its limit
            code = created.json()["code"]
            # A capped link is answered by the `follow` route (RateLimitHeaders adds
            # the fields there), an uncapped one by the fast path: both follow the rule.
            capped = await client.post(
                "/api/v1/links",
                json={"url": "https://example.com/capped", "max_visits": 100},
                headers={"Authorization": f"Bearer {key}"},
            )
            assert capped.status_code == 201
            headers = {"Accept": accept}
            paths = [f"/{code}", f"/{capped.json()['code']}"] * 2
            far = [await client.get(path, headers=headers) for path in paths]
            assert [r.status_code for r in far] == [302] * 4
            assert all("ratelimit" not in r.headers for r in far)
            assert all("ratelimit-policy" not in r.headers for r in far)
            near = await client.get(f"/{code}", headers=headers)
            assert near.status_code == 302
            assert fields(near) == (
                {"name": "redirect", "q": 10, "w": 60},
                {"name": "redirect", "r": 5, "t": 30},
            )
            unknown = await client.get("/nosuchcode", headers=headers)
            assert unknown.status_code == 404
            assert fields(unknown)[1]["r"] == 4
            answers = [await client.get(f"/{code}", headers=headers) for _ in range(5)]
            assert [r.status_code for r in answers] == [302, 302, 302, 302, 429]
            assert [fields(r)[1]["r"] for r in answers] == [3, 2, 1, 0, 0]
