"""A link redirects in its window [starts_at, expires_at): before it 410 link-not-active,
after it 410 link-expired, through every way in (the fast path, the `follow` route, HEAD
and gRPC ResolveLink); a window that is never open is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest
from fastapi import FastAPI

from kurz.config import Settings
from kurz.grpc.kurz.v1 import links_pb2 as pb
from tests.integration.grpc.support import (
    Rpc,
    assert_same_failure,
    create_request,
    new_key,
    rpc_client,
    serving,
)
from tests.integration.links.support import create
from tests.integration.links.test_pipeline import count_reads
from tests.support import FakeClock

PROBLEM = "application/problem+json"


@pytest.fixture
async def app(settings: Settings, clock: FakeClock) -> AsyncIterator[FastAPI]:
    """The app with its gRPC server, so that ResolveLink is asked as GET is."""
    async with serving(settings, clock) as app:
        yield app


@pytest.fixture
async def rpc(app: FastAPI, clock: FakeClock) -> AsyncIterator[Rpc]:
    async with rpc_client(app, await new_key(app, clock, "resolver")) as client:
        yield client


async def assert_gone(anon: httpx.AsyncClient, rpc: Rpc, code: str, slug: str) -> dict[str, Any]:
    """GET, HEAD and ResolveLink (a visit and a peek) all answer 410 `slug`; its problem."""
    response = await anon.get(f"/{code}")
    assert response.status_code == 410, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["type"] == f"/problems/{slug}"
    assert (await anon.head(f"/{code}")).status_code == 410
    reason = slug.upper().replace("-", "_")
    for peek in (False, True):
        request = pb.ResolveLinkRequest(code=code, peek=peek)
        failure = await rpc.fails("ResolveLink", request)
        assert failure.code == grpc.StatusCode.NOT_FOUND
        assert failure.info.reason == reason
    assert_same_failure(response, failure)
    return body


async def test_a_link_redirects_only_within_its_window(
    app: FastAPI, api: httpx.AsyncClient, anon: httpx.AsyncClient, rpc: Rpc, clock: FakeClock
) -> None:
    l1 = app.state.kurz.targets.l1
    link = await create(api, valid_from=clock.iso(60), expires_at=clock.iso(120))
    code = link["code"]
    assert link["valid_from"] == "2026-01-01T00:01:00Z"

    # Before the window opens.
    problem = await assert_gone(anon, rpc, code, "link-not-active")
    assert problem["title"] == "Link not active yet"
    assert problem["detail"] == "This short link is active from 2026-01-01T00:01:00Z."
    page = await anon.get(f"/{code}", headers={"Accept": "text/html"})
    assert page.status_code == 410
    assert page.headers["content-type"].startswith("text/html")
    assert "Link not active yet" in page.text
    assert "2026-01-01T00:01:00Z" in page.text
    # Cached in L1 now: the fast path asks the verdict too, and cannot skip the rule.
    assert code in l1
    assert (await anon.get(f"/{code}")).json()["type"] == "/problems/link-not-active"

    # From valid_from on: a redirect, the second one an L1 hit that reads nothing.
    clock.advance(59)
    assert (await anon.get(f"/{code}")).status_code == 410
    clock.advance(1)
    first = await anon.get(f"/{code}")
    assert (first.status_code, first.headers["location"]) == (302, "https://example.com/")
    assert code in l1
    reads = count_reads(app)
    second = await anon.get(f"/{code}")
    assert (second.status_code, second.headers["location"]) == (302, "https://example.com/")
    assert reads[0] == 0
    assert (await anon.head(f"/{code}")).status_code == 302
    resolved = (await rpc.ok("ResolveLink", pb.ResolveLinkRequest(code=code))).message
    assert (resolved.redirect_status, resolved.location) == (302, "https://example.com/")

    # At expires_at the window has closed.
    clock.advance(60)
    problem = await assert_gone(anon, rpc, code, "link-expired")
    assert problem["title"] == "Link expired"


async def test_a_link_without_an_end_is_active_from_its_start_on(
    api: httpx.AsyncClient, anon: httpx.AsyncClient, rpc: Rpc, clock: FakeClock
) -> None:
    code = (await create(api, valid_from=clock.iso(3_600)))["code"]
    await assert_gone(anon, rpc, code, "link-not-active")
    clock.advance(3_600)
    assert (await anon.get(f"/{code}")).status_code == 302
    # A start in the past: active at once.
    past = (await create(api, valid_from=clock.iso(-86_400)))["code"]
    assert (await anon.get(f"/{past}")).status_code == 302


async def test_moving_the_start_takes_effect_at_once(
    api: httpx.AsyncClient, anon: httpx.AsyncClient, clock: FakeClock
) -> None:
    code = (await create(api, valid_from=clock.iso(3_600)))["code"]
    assert (await anon.get(f"/{code}")).status_code == 410
    path = f"/api/v1/links/{code}"
    opened = await api.patch(path, json={"valid_from": None}, headers={"If-Match": '"1"'})
    assert opened.status_code == 200, opened.text
    assert opened.json()["valid_from"] is None
    assert (await anon.get(f"/{code}")).status_code == 302
    closed = await api.patch(path, json={"valid_from": clock.iso(60)}, headers={"If-Match": '"2"'})
    assert closed.status_code == 200, closed.text
    assert (await anon.get(f"/{code}")).json()["type"] == "/problems/link-not-active"


def assert_invalid(response: httpx.Response, field: str, message: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    [error] = response.json()["errors"]
    assert (error["field"], error["message"]) == (field, message)


@pytest.mark.parametrize("length", [0.0, -1.0], ids=["empty", "reversed"])
async def test_a_window_that_never_opens_is_refused_on_create(
    api: httpx.AsyncClient, rpc: Rpc, clock: FakeClock, length: float
) -> None:
    body = {
        "url": "https://example.com/",
        "valid_from": clock.iso(60),
        "expires_at": clock.iso(60 + length),
    }
    response = await api.post("/api/v1/links", json=body)
    assert_invalid(response, "valid_from", "must be before expires_at")
    failure = await rpc.fails("CreateLink", create_request(body))
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.violations == {"start_time": "must be before expires_at"}
    assert_same_failure(response, failure)
    assert (await api.get("/api/v1/links")).json()["items"] == []


async def test_a_window_that_never_opens_is_refused_on_update(
    api: httpx.AsyncClient, clock: FakeClock
) -> None:
    code = (await create(api, valid_from=clock.iso(60), expires_at=clock.iso(120)))["code"]
    path = f"/api/v1/links/{code}"
    if_match = {"If-Match": '"1"'}
    # Against the stored other end, whichever end moves.
    late_start = await api.patch(path, json={"valid_from": clock.iso(120)}, headers=if_match)
    assert_invalid(late_start, "valid_from", "must be before expires_at")
    early_end = await api.patch(path, json={"expires_at": clock.iso(30)}, headers=if_match)
    assert_invalid(early_end, "expires_at", "must be after valid_from")
    both = {"valid_from": clock.iso(300), "expires_at": clock.iso(200)}
    assert_invalid(
        await api.patch(path, json=both, headers=if_match),
        "valid_from",
        "must be before expires_at",
    )
    # Nothing was written.
    kept = (await api.get(path)).json()
    assert (kept["version"], kept["valid_from"], kept["expires_at"]) == (
        1,
        "2026-01-01T00:01:00Z",
        "2026-01-01T00:02:00Z",
    )
    # Moving both ends together is fine.
    moved = await api.patch(path, json=both | {"valid_from": clock.iso(100)}, headers=if_match)
    assert moved.status_code == 200, moved.text


@pytest.mark.parametrize(
    "value",
    ["1767225600", 1767225600, "2026-01-01T00:01:00", "tomorrow"],
    ids=["digits", "number", "no-offset", "words"],
)
async def test_valid_from_is_an_rfc3339_date_time_with_an_offset(
    api: httpx.AsyncClient, value: object
) -> None:
    response = await api.post("/api/v1/links", json={"url": "https://e.com/", "valid_from": value})
    assert response.status_code == 422, response.text
    assert [error["field"] for error in response.json()["errors"]] == ["valid_from"]
