"""Following short links: statuses, query forwarding, expiry, visit caps, the cache."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from kurz.db import Database
from kurz.links.cache import loader, many_loader
from tests.integration.links.support import create
from tests.support import FakeClock

PROBLEM = "application/problem+json"


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_redirects_with_the_links_status(
    api: httpx.AsyncClient, anon: httpx.AsyncClient, status: int
) -> None:
    link = await create(api, url="https://example.com/x", redirect_status=status)
    for _ in range(2):  # a miss, then a cache hit: both must answer alike
        response = await anon.get(f"/{link['code']}")
        assert response.status_code == status
        assert response.headers["location"] == "https://example.com/x"
        assert response.content == b""
        permanent = status in (301, 308)
        assert ("cache-control" in response.headers) is permanent


async def test_head_answers_like_get(api: httpx.AsyncClient, anon: httpx.AsyncClient) -> None:
    link = await create(api, url="https://example.com/h")
    response = await anon.head(f"/{link['code']}")
    assert response.status_code == 302
    assert response.headers["location"] == "https://example.com/h"


@pytest.mark.parametrize(
    ("target", "query", "location"),
    [
        ("https://e.com/p", "a=1", "https://e.com/p?a=1"),
        ("https://e.com/p?x=0", "a=1&b=2", "https://e.com/p?x=0&a=1&b=2"),
        ("https://e.com/p#top", "a=1", "https://e.com/p?a=1#top"),
        ("https://e.com/p?x=0#top", "a=%C3%A4", "https://e.com/p?x=0&a=%C3%A4#top"),
        ("https://e.com/p", "", "https://e.com/p"),
    ],
)
async def test_forward_query_appends_the_visitors_query(
    api: httpx.AsyncClient, anon: httpx.AsyncClient, target: str, query: str, location: str
) -> None:
    link = await create(api, url=target, forward_query=True)
    for _ in range(2):
        response = await anon.get(f"/{link['code']}?{query}" if query else f"/{link['code']}")
        assert response.headers["location"] == location


async def test_query_is_dropped_unless_forwarded(
    api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    link = await create(api, url="https://e.com/p")
    response = await anon.get(f"/{link['code']}?utm=1")
    assert response.headers["location"] == "https://e.com/p"


async def test_unknown_code_is_404_problem_or_html_for_browsers(anon: httpx.AsyncClient) -> None:
    response = await anon.get("/nosuchcode")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == "/problems/link-not-found"
    page = await anon.get("/nosuchcode", headers={"Accept": "text/html,*/*;q=0.8"})
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "<h1>Link not found</h1>" in page.text


@pytest.mark.parametrize("path", ["/%00abc", "/a%20b", "/" + "x" * 65, "/ab<script>", "/.env"])
async def test_paths_that_cannot_be_codes_are_404(anon: httpx.AsyncClient, path: str) -> None:
    response = await anon.get(path, headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert "<script>" not in response.text


async def test_expired_link_is_410_even_from_the_cache(
    api: httpx.AsyncClient, anon: httpx.AsyncClient, clock: FakeClock
) -> None:
    link = await create(api, expires_at=clock.iso(60))
    assert (await anon.get(f"/{link['code']}")).status_code == 302  # now cached
    clock.advance(61)
    response = await anon.get(f"/{link['code']}")
    assert response.status_code == 410
    assert response.json()["type"] == "/problems/link-expired"
    page = await anon.get(f"/{link['code']}", headers={"Accept": "text/html"})
    assert page.status_code == 410
    assert "expired" in page.text


async def test_visit_cap_allows_exactly_max_visits(
    api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    link = await create(api, max_visits=3)
    statuses = [(await anon.get(f"/{link['code']}")).status_code for _ in range(5)]
    assert statuses == [302, 302, 302, 410, 410]
    assert (await anon.get(f"/{link['code']}")).json()["type"] == "/problems/link-visits-exhausted"


async def test_head_does_not_use_up_a_visit(
    api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    link = await create(api, max_visits=1)
    for _ in range(3):
        assert (await anon.head(f"/{link['code']}")).status_code == 302
    assert (await anon.get(f"/{link['code']}")).status_code == 302
    assert (await anon.head(f"/{link['code']}")).status_code == 410


async def test_concurrent_visitors_of_a_capped_link_get_exactly_the_cap(
    api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    link = await create(api, max_visits=7)
    responses = await asyncio.gather(*(anon.get(f"/{link['code']}") for _ in range(20)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [302] * 7 + [410] * 13


async def test_patch_takes_effect_on_the_next_redirect(
    api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    link = await create(api, url="https://old.example/")
    assert (await anon.get(f"/{link['code']}")).headers["location"] == "https://old.example/"
    patched = await api.patch(
        f"/api/v1/links/{link['code']}", json={"url": "https://new.example/"},
        headers={"If-Match": '"1"'},
    )  # fmt: skip
    assert patched.status_code == 200
    assert (await anon.get(f"/{link['code']}")).headers["location"] == "https://new.example/"


async def test_raising_a_used_up_cap_reopens_the_link(
    api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    link = await create(api, max_visits=1)
    assert (await anon.get(f"/{link['code']}")).status_code == 302
    assert (await anon.get(f"/{link['code']}")).status_code == 410
    response = await api.patch(
        f"/api/v1/links/{link['code']}", json={"max_visits": 2}, headers={"If-Match": '"1"'}
    )
    assert response.status_code == 200
    assert (await anon.get(f"/{link['code']}")).status_code == 302
    assert (await anon.get(f"/{link['code']}")).status_code == 410


@contextmanager
def sql_statements(app: Any) -> Iterator[list[str]]:
    """The SQL statements the app runs inside the block."""
    statements: list[str] = []
    engine = app.state.kurz.db.engine.sync_engine

    def record(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def test_a_repeat_hit_does_not_touch_the_database(
    api: httpx.AsyncClient, anon: httpx.AsyncClient, app: Any
) -> None:
    link = await create(api)
    assert (await anon.get(f"/{link['code']}")).status_code == 302
    with sql_statements(app) as statements:
        for _ in range(5):
            assert (await anon.get(f"/{link['code']}")).status_code == 302
    assert statements == []


async def test_a_flood_of_one_unknown_code_reads_the_database_once(
    anon: httpx.AsyncClient, app: Any
) -> None:
    with sql_statements(app) as statements:
        for _ in range(10):
            assert (await anon.get("/nosuchcode")).status_code == 404
    reads = [statement for statement in statements if statement.startswith("SELECT")]
    assert len(reads) == 1, statements


async def test_an_alias_tried_before_it_exists_works_once_created(
    api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    assert (await anon.get("/soon-here")).status_code == 404
    await create(api, url="https://example.com/soon", alias="soon-here")
    response = await anon.get("/soon-here")
    assert response.status_code == 302
    assert response.headers["location"] == "https://example.com/soon"


async def test_a_deleted_link_is_gone_on_the_next_redirect(
    api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    link = await create(api)
    assert (await anon.get(f"/{link['code']}")).status_code == 302
    assert (await api.delete(f"/api/v1/links/{link['code']}")).status_code == 204
    assert (await anon.get(f"/{link['code']}")).status_code == 404


@pytest.mark.parametrize("host", ["kurz.test", "evil.example"])
async def test_a_trailing_slash_follows_the_link(
    api: httpx.AsyncClient, anon: httpx.AsyncClient, host: str
) -> None:
    # As at Bitly and Shlink: a short link pasted with a slash after it still works.
    link = await create(api, url="https://example.com/t")
    for _ in range(2):  # a miss, then an L1 hit
        response = await anon.get(f"/{link['code']}/", headers={"Host": host})
        assert response.status_code == 302
        assert response.headers["location"] == "https://example.com/t"
    assert (await anon.get("/nosuchcode/")).status_code == 404


async def test_a_cached_link_with_a_slash_is_answered_before_fastapi(
    api: httpx.AsyncClient, anon: httpx.AsyncClient, app: Any
) -> None:
    link = await create(api)
    assert (await anon.get(f"/{link['code']}")).status_code == 302
    entered: list[str] = []
    stack = app.middleware_stack

    async def counted(scope: Any, receive: Any, send: Any) -> None:
        entered.append(scope["path"])
        await stack(scope, receive, send)

    app.middleware_stack = counted
    assert (await anon.get(f"/{link['code']}/")).status_code == 302
    assert entered == []


@pytest.mark.parametrize("deployment", ["embedded"], indirect=True)
async def test_an_api_path_with_a_slash_is_a_404_that_names_the_path(
    api: httpx.AsyncClient,
) -> None:
    response = await api.post("/api/v1/links/", json={"url": "https://example.com/"})
    assert response.status_code == 404
    assert response.json()["detail"].endswith("without a slash: /api/v1/links")
    assert (await api.get("/api/v1/links")).json()["items"] == []


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/links/",
        "/api/v1/links/abcdefg/",
        "/api/v1/links/abcdefg/stats/",
        "/api/v1/stats/",
        "/healthz/",
        "/readyz/",
        "/metrics/",
        "/docs/",
        "/openapi.json/",
        "/a/b/",
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("deployment", ["embedded"], indirect=True)
async def test_no_redirect_is_built_from_the_host_header(
    api: httpx.AsyncClient, path: str, method: str
) -> None:
    response = await api.request(method, path, headers={"Host": "evil.example"})
    # /healthz/ is read as a short link with a slash: a 404 to GET, a 405 to POST.
    assert response.status_code in (404, 405), response.headers
    assert "location" not in response.headers
    assert response.headers["content-type"] == PROBLEM


async def test_many_codes_resolve_in_one_statement_as_each_would_alone(
    api: httpx.AsyncClient, db: Database, app: Any
) -> None:
    # The cache's batched refresh (ADR 0007): live links by code; deleted and unknown
    # codes are absent, so the cache knows them to be missing.
    links = [await create(api, url=f"https://example.com/{i}") for i in range(3)]
    deleted = await create(api, url="https://example.com/gone")
    assert (await api.delete(f"/api/v1/links/{deleted['code']}")).status_code == 204
    codes = [link["code"] for link in links] + [deleted["code"], "never-made"]
    with sql_statements(app) as statements:
        many = await many_loader(db)(codes)
    assert [s for s in statements if s.startswith("SELECT")] == [statements[-1]]
    assert "IN (" in statements[-1]
    one = loader(db)
    assert many == {link["code"]: await one(link["code"]) for link in links}
    assert many[links[0]["code"]].url == "https://example.com/0"
