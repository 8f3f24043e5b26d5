"""Who may call, and how often: API keys and rate limits, alike through both APIs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import httpx
import pytest
from fastapi import FastAPI

from kurz.config import Settings
from kurz.grpc.kurz.v1 import links_pb2 as pb
from tests.integration.grpc.support import (
    Failure,
    Rpc,
    assert_same_failure,
    new_key,
    rest_client,
    rpc_client,
    serving,
)
from tests.integration.links.support import create
from tests.support import FakeClock

# Who may call


@pytest.mark.parametrize(
    ("headers", "metadata"),
    [
        ({}, ()),
        ({"Authorization": "Bearer kurz_not-a-key"}, (("authorization", "Bearer kurz_not-a-key"),)),
        ({"Authorization": "Basic YTpi"}, (("authorization", "Basic YTpi"),)),
    ],
    ids=["no-key", "wrong-key", "not-bearer"],
)
async def test_callers_without_a_valid_key_are_unauthenticated_alike(
    app: FastAPI, rpc: Rpc, headers: dict[str, str], metadata: tuple[tuple[str, str], ...]
) -> None:
    async with rest_client(app, None) as anonymous:
        response = await anonymous.get("/api/v1/links", headers=headers)
    assert response.status_code == 401
    requests = {
        "CreateLink": pb.CreateLinkRequest(url="https://example.com/"),
        "BatchCreateLinks": pb.BatchCreateLinksRequest(
            requests=[pb.CreateLinkRequest(url="https://example.com/")]
        ),
        "GetLink": pb.GetLinkRequest(code="abc"),
        "ListLinks": pb.ListLinksRequest(),
        "UpdateLink": pb.UpdateLinkRequest(code="abc", expected_version=1),
        "DeleteLink": pb.DeleteLinkRequest(code="abc"),
        "ResolveLink": pb.ResolveLinkRequest(code="abc"),
        "GetLinkStats": pb.GetLinkStatsRequest(code="abc"),
    }
    assert set(requests) == set(pb.DESCRIPTOR.services_by_name["LinkService"].methods_by_name)
    # Without a key, REST's detail also offers a session cookie, which gRPC has not.
    keyed = any(value.startswith("Bearer ") for _, value in metadata)
    for method, request in requests.items():
        failure = await rpc.fails(method, request, metadata=metadata, secret=None)
        assert failure.code == grpc.StatusCode.UNAUTHENTICATED, method
        assert failure.info.reason == "UNAUTHORIZED"
        assert_same_failure(response, failure, same_detail=keyed)


# Rate limits


@pytest.fixture
async def limited(settings: Settings, clock: FakeClock) -> AsyncIterator[FastAPI]:
    """An app with tiny limits: 2 calls per key, 2 failed logins and 2 redirects per IP."""
    tiny = "2/60s;burst=2"
    policies = {"ratelimit_api": tiny, "ratelimit_auth_fail": tiny, "ratelimit_redirect": tiny}
    async with serving(settings.model_copy(update=policies), clock) as app:
        yield app


def assert_same_limit(response: httpx.Response, failure: Failure) -> None:
    assert response.status_code == 429
    assert failure.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert failure.retry_delay is not None
    assert failure.retry_delay > 0
    assert_same_failure(response, failure)  # RetryInfo is Retry-After
    for name in ("ratelimit-policy", "ratelimit"):
        assert failure.trailers[name] == response.headers[name]


async def test_one_key_has_one_api_limit_for_both(limited: FastAPI, clock: FakeClock) -> None:
    secret = await new_key(limited, clock)
    async with rest_client(limited, secret) as api, rpc_client(limited, secret) as rpc:
        code = (await create(api))["code"]
        got = await rpc.ok("GetLink", pb.GetLinkRequest(code=code))
        assert got.trailers["ratelimit-policy"] == '"api";q=2;w=60'
        assert got.trailers["ratelimit"].startswith('"api";r=0;')

        failure = await rpc.fails("GetLink", pb.GetLinkRequest(code=code))
        response = await api.get(f"/api/v1/links/{code}")
        assert failure.info.reason == "RATE_LIMIT_API"
        assert failure.info.metadata["type"] == "/problems/rate-limit/api"
        assert_same_limit(response, failure)

        # Resolving counts against the visitor's redirect limit, not the key's.
        await rpc.ok("ResolveLink", pb.ResolveLinkRequest(code=code))
        clock.advance(30)
        await rpc.ok("GetLink", pb.GetLinkRequest(code=code))


async def test_wrong_keys_share_one_limit_per_address(limited: FastAPI) -> None:
    async with rest_client(limited, "kurz_wrong") as api, rpc_client(limited, "kurz_wrong") as rpc:
        assert (await api.get("/api/v1/links")).status_code == 401
        unknown = await rpc.fails("ListLinks", pb.ListLinksRequest())
        assert unknown.code == grpc.StatusCode.UNAUTHENTICATED
        # Both came from 127.0.0.1: the third failure is refused, by either API.
        failure = await rpc.fails("ListLinks", pb.ListLinksRequest())
        response = await api.get("/api/v1/links")
        assert failure.info.reason == "RATE_LIMIT_AUTH_FAIL"
        assert_same_limit(response, failure)


async def test_resolve_is_limited_per_visitor(limited: FastAPI, clock: FakeClock) -> None:
    # A proxy key names the visitors (test_resolve_visitors.py: what other keys may do).
    secret = await new_key(limited, clock, proxy=True)
    async with (
        rest_client(limited, secret) as api,
        rest_client(limited, None) as anon,
        rpc_client(limited, secret) as rpc,
    ):
        code = (await create(api))["code"]
        visitor = pb.ResolveLinkRequest(code=code, client_ip="203.0.113.7")
        for _ in range(2):
            await rpc.ok("ResolveLink", visitor)
        failure = await rpc.fails("ResolveLink", visitor)
        assert failure.info.reason == "RATE_LIMIT_REDIRECT"
        # Another visitor (the REST client, 127.0.0.1) has a limit of its own.
        assert [(await anon.get(f"/{code}")).status_code for _ in range(3)] == [302, 302, 429]
        assert_same_limit(await anon.get(f"/{code}"), failure)
        # A proxy resolving for no visitor in particular is its own peer address.
        unnamed = await rpc.fails("ResolveLink", pb.ResolveLinkRequest(code=code))
        assert unnamed.info.reason == "RATE_LIMIT_REDIRECT"
