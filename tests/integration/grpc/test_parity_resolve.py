"""ResolveLink against GET and HEAD /{code}: locations, visit caps, gone links."""

from __future__ import annotations

from typing import Any

import grpc
import httpx
import pytest

from kurz.grpc.kurz.v1 import links_pb2 as pb
from tests.integration.grpc.support import Rpc, assert_same_failure
from tests.integration.links.support import create
from tests.support import FakeClock


@pytest.mark.parametrize(
    ("body", "query", "location"),
    [
        (
            {"redirect_status": 301, "forward_query": True},
            "utm=1&b=x%20y",
            "https://example.com/?utm=1&b=x%20y",
        ),
        ({"redirect_status": 308, "forward_query": True}, "", "https://example.com/"),
        (
            {"forward_query": True, "url": "https://example.com/p?a=1#top"},
            "b=2",
            "https://example.com/p?a=1&b=2#top",
        ),
        # A query the proxy has decoded: sent on as UTF-8, as an HTTP client sends it.
        ({"forward_query": True}, "q=ü&e=€", "https://example.com/?q=%C3%BC&e=%E2%82%AC"),
        ({"redirect_status": 307}, "dropped=1", "https://example.com/"),
    ],
    ids=["permanent", "no-query", "fragment", "unicode", "not-forwarded"],
)
async def test_resolve_answers_what_a_redirect_sends(
    api: httpx.AsyncClient,
    rpc: Rpc,
    anon: httpx.AsyncClient,
    body: dict[str, Any],
    query: str,
    location: str,
) -> None:
    code = (await create(api, **body))["code"]
    status = body.get("redirect_status", 302)
    path = f"/{code}?{query}" if query else f"/{code}"
    for peek in (True, False):
        response = await (anon.head(path) if peek else anon.get(path))
        request = pb.ResolveLinkRequest(code=code, query=query, peek=peek)
        reply = (await rpc.ok("ResolveLink", request)).message
        assert (reply.redirect_status, reply.location) == (status, location)
        assert response.status_code == status
        assert response.headers["location"] == location
        assert reply.cache_control == response.headers.get("cache-control", "")
        # Permanent redirects tell caches how long to keep them.
        assert bool(reply.cache_control) == (status in (301, 308))


async def test_an_expired_link_is_gone_alike(
    api: httpx.AsyncClient, rpc: Rpc, anon: httpx.AsyncClient, clock: FakeClock
) -> None:
    code = (await create(api, expires_at=clock.iso(60)))["code"]
    await rpc.ok("ResolveLink", pb.ResolveLinkRequest(code=code))
    clock.advance(60)
    response = await anon.get(f"/{code}")
    failure = await rpc.fails("ResolveLink", pb.ResolveLinkRequest(code=code))
    assert response.status_code == 410
    assert failure.code == grpc.StatusCode.NOT_FOUND
    assert failure.info.reason == "LINK_EXPIRED"
    assert assert_same_failure(response, failure)["type"] == "/problems/link-expired"
    peeked = await rpc.fails("ResolveLink", pb.ResolveLinkRequest(code=code, peek=True))
    assert peeked.info.reason == "LINK_EXPIRED"
    assert (await anon.head(f"/{code}")).status_code == 410


async def test_visits_are_shared_and_a_peek_uses_none(
    api: httpx.AsyncClient, rpc: Rpc, anon: httpx.AsyncClient
) -> None:
    code = (await create(api, max_visits=2))["code"]
    for _ in range(3):
        await rpc.ok("ResolveLink", pb.ResolveLinkRequest(code=code, peek=True))
        assert (await anon.head(f"/{code}")).status_code == 302
    # One visit through each API uses up both.
    await rpc.ok("ResolveLink", pb.ResolveLinkRequest(code=code))
    assert (await anon.get(f"/{code}")).status_code == 302

    response = await anon.get(f"/{code}")
    failure = await rpc.fails("ResolveLink", pb.ResolveLinkRequest(code=code))
    assert response.status_code == 410
    assert failure.code == grpc.StatusCode.NOT_FOUND
    assert failure.info.reason == "LINK_VISITS_EXHAUSTED"
    assert_same_failure(response, failure)
    peeked = await rpc.fails("ResolveLink", pb.ResolveLinkRequest(code=code, peek=True))
    assert peeked.info.reason == "LINK_VISITS_EXHAUSTED"
    assert (await anon.head(f"/{code}")).status_code == 410


@pytest.mark.parametrize("code", ["nope123", "not.a.code", "x" * 65])
async def test_resolving_an_unknown_code_fails_alike(
    rpc: Rpc, anon: httpx.AsyncClient, code: str
) -> None:
    response = await anon.get(f"/{code}")
    failure = await rpc.fails("ResolveLink", pb.ResolveLinkRequest(code=code))
    assert response.status_code == 404
    assert failure.info.reason == "LINK_NOT_FOUND"
    assert_same_failure(response, failure)
