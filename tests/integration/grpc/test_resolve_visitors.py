"""Whom a ResolveLink is for: only a proxy key may name the visitor.

The visitor a call names decides whose redirect limit the call uses and whose click
it counts. Any other key's call is the calling peer's own visit, as GET /{code} is
the HTTP client's: limited and counted by the peer's address and the call's own
user agent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest
from fastapi import FastAPI

from kurz.analytics.models import DIMENSIONS
from kurz.config import Settings
from kurz.grpc.kurz.v1 import links_pb2 as pb
from tests.integration.grpc.support import (
    Failure,
    Reply,
    Rpc,
    new_key,
    rpc_client,
    serving,
)
from tests.integration.grpc.test_parity_stats import FIREFOX, rest_stats_of
from tests.integration.links.support import create
from tests.support import FakeClock, record_queued_clicks

VISITS = 400
REFERER = "https://www.news.example/a"
# The call's own user agent; grpcio adds its own name and version after it.
OWN_AGENT = "uptime-bot/1.0"


@pytest.fixture
async def app(settings: Settings, clock: FakeClock) -> AsyncIterator[FastAPI]:
    """Clicks counted, and 6 redirects a minute per visitor."""
    update = {"analytics": True, "ratelimit_redirect": "6/60s;burst=6"}
    async with serving(settings.model_copy(update=update), clock) as app:
        yield app


def visit(code: str, n: int) -> pb.ResolveLinkRequest:
    """A visit by the n-th of many visitors, as an edge proxy saw it."""
    client_ip = f"198.18.{n // 256}.{n % 256}"
    return pb.ResolveLinkRequest(
        code=code, client_ip=client_ip, user_agent=FIREFOX, referer=REFERER
    )


def outcome(answer: Reply | Failure) -> str:
    return "OK" if isinstance(answer, Reply) else answer.info.reason


async def clicks_of(
    app: FastAPI, api: httpx.AsyncClient, clock: FakeClock, code: str
) -> dict[str, Any]:
    """The link's stats as its owner reads them, once every queued click is written."""
    await record_queued_clicks(app.state.kurz.analytics)
    clock.advance(3600)
    return await rest_stats_of(api, code, interval="hour")


@pytest.mark.parametrize("admin", [False, True], ids=["ordinary", "admin"])
async def test_a_key_that_is_no_proxy_key_cannot_name_visitors(
    app: FastAPI, api: httpx.AsyncClient, clock: FakeClock, admin: bool
) -> None:
    code = (await create(api))["code"]
    secret = await new_key(app, clock, "mallory", admin=admin)
    options = (("grpc.primary_user_agent", OWN_AGENT),)
    port = app.state.kurz.settings.grpc_port
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
        mallory = Rpc(channel, secret)
        answers = [await mallory.call("ResolveLink", visit(code, n)) for n in range(VISITS)]
        # Every call was the peer's: six refused, and then the peer's limit was used up.
        assert Counter(map(outcome, answers)) == {
            "PROXY_KEY_REQUIRED": 6,
            "RATE_LIMIT_REDIRECT": VISITS - 6,
        }
        refused = answers[0]
        assert isinstance(refused, Failure)
        assert refused.code == grpc.StatusCode.PERMISSION_DENIED
        assert "kurz keys create --proxy" in refused.message
        assert refused.info.metadata["http_status"] == "403"
        # Naming any part of a visitor is naming one.
        for part in (
            pb.ResolveLinkRequest(code=code, user_agent=FIREFOX),
            pb.ResolveLinkRequest(code=code, referer=REFERER),
        ):
            clock.advance(60)
            named = await mallory.fails("ResolveLink", part)
            assert named.info.reason == "PROXY_KEY_REQUIRED"

        # Naming no one, the key resolves as the peer it is, within the peer's limit.
        clock.advance(60)
        plain = pb.ResolveLinkRequest(code=code)
        own = [outcome(await mallory.call("ResolveLink", plain)) for _ in range(7)]
        assert own == ["OK"] * 6 + ["RATE_LIMIT_REDIRECT"]

    found = await clicks_of(app, api, clock, code)
    # Six visits by the caller itself: a machine, by its own user agent, from no referrer
    # (bots are counted apart, with no breakdowns but their name).
    assert found["totals"] == {"clicks": 0, "uniques": 0, "bot_clicks": 6}
    top = {
        dimension: found["top"][dimension] for dimension in DIMENSIONS if found["top"][dimension]
    }
    assert top == {"bot": [{"value": "uptime-bot", "clicks": 6}]}


async def test_a_proxy_keys_calls_are_each_the_named_visitors(
    app: FastAPI, api: httpx.AsyncClient, clock: FakeClock
) -> None:
    code = (await create(api))["code"]
    async with rpc_client(app, await new_key(app, clock, "edge", proxy=True)) as edge:
        # Many visitors, a visit each: none is near its limit.
        for n in range(VISITS):
            await edge.ok("ResolveLink", visit(code, n))
        # One visitor over and over is limited, as that visitor: the others are not.
        again = [outcome(await edge.call("ResolveLink", visit(code, 0))) for _ in range(6)]
        assert again == ["OK"] * 5 + ["RATE_LIMIT_REDIRECT"]
        await edge.ok("ResolveLink", visit(code, 1))
        # Nor is the proxy itself, resolving for no one in particular.
        await edge.ok("ResolveLink", pb.ResolveLinkRequest(code=code, peek=True))

    found = await clicks_of(app, api, clock, code)
    clicks = VISITS + 5 + 1
    assert found["totals"] == {"clicks": clicks, "uniques": VISITS, "bot_clicks": 0}
    assert found["top"]["referrer"] == [{"value": "news.example", "clicks": clicks}]
    assert found["top"]["browser"] == [{"value": "Firefox", "clicks": clicks}]
