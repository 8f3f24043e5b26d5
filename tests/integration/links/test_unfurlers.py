"""Link-preview bots: never use up a visit, never get a capped or password link's target
(a page without it, with the link's og_* fields if set); a plain link redirects them as
before, unless it has og_* fields, which they are shown instead."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from kurz.config import Settings
from kurz.grpc.kurz.v1 import links_pb2 as pb
from tests.integration.grpc.support import Rpc, new_key, rpc_client, serving
from tests.integration.links.support import create
from tests.support import FakeClock

TARGET = "https://secret.example/plans"
SLACKBOT = {"User-Agent": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"}
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


@pytest.fixture
async def app(settings: Settings, clock: FakeClock) -> AsyncIterator[FastAPI]:
    async with serving(settings, clock) as app:
        yield app


@pytest.fixture
async def edge(app: FastAPI, clock: FakeClock) -> AsyncIterator[Rpc]:
    """An edge proxy's client: it names each visitor."""
    async with rpc_client(app, await new_key(app, clock, "edge", proxy=True)) as client:
        yield client


def assert_preview(response: httpx.Response) -> None:
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "location" not in response.headers
    assert "secret.example" not in response.text
    assert response.headers["cache-control"] == "no-store"


async def test_a_bot_never_uses_up_a_one_time_link(
    api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    code = (await create(api, url=TARGET, max_visits=1))["code"]
    for _ in range(3):
        preview = await anon.get(f"/{code}", headers=SLACKBOT)
        assert_preview(preview)
        assert '<meta property="og:title" content="Short link">' in preview.text
        assert_preview(await anon.head(f"/{code}", headers=SLACKBOT))
    browser = await anon.get(f"/{code}", headers={"User-Agent": FIREFOX})
    assert browser.status_code == 302
    assert browser.headers["location"] == TARGET
    assert (await anon.get(f"/{code}", headers={"User-Agent": FIREFOX})).status_code == 410
    # Used up: the bot still learns nothing of the target, and takes nothing.
    assert_preview(await anon.get(f"/{code}", headers=SLACKBOT))


async def test_a_bot_gets_a_password_link_s_preview_fields_and_not_its_target(
    api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    code = (
        await create(
            api,
            url=TARGET,
            password="open sesame",
            og_title="Q3 plans <draft>",
            og_description="For the team",
            og_image="https://img.example/card.png",
        )
    )["code"]
    preview = await anon.get(f"/{code}", headers={"User-Agent": "Twitterbot/1.0"})
    assert_preview(preview)
    assert '<meta property="og:title" content="Q3 plans &lt;draft&gt;">' in preview.text
    assert '<meta property="og:description" content="For the team">' in preview.text
    assert '<meta property="og:image" content="https://img.example/card.png">' in preview.text
    assert '<meta name="twitter:card" content="summary_large_image">' in preview.text
    assert "<script" not in preview.text
    assert (await anon.get(f"/{code}")).status_code == 401


async def test_a_plain_link_redirects_bots_unless_it_has_preview_fields(
    api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    plain = (await create(api, url=TARGET))["code"]
    for _ in range(2):
        redirect = await anon.get(f"/{plain}", headers=SLACKBOT)
        assert redirect.status_code == 302
        assert redirect.headers["location"] == TARGET
    carded = (await create(api, url=TARGET, og_title="Our plans"))["code"]
    # Twice: from L1 the second time, which the fast path may not answer for a bot.
    for _ in range(2):
        preview = await anon.get(f"/{carded}", headers={"User-Agent": "facebookexternalhit/1.1"})
        assert_preview(preview)
        assert "Our plans" in preview.text
        visitor = await anon.get(f"/{carded}", headers={"User-Agent": FIREFOX})
        assert visitor.status_code == 302
        assert visitor.headers["location"] == TARGET


async def test_preview_fields_are_validated_and_can_be_cleared(api: httpx.AsyncClient) -> None:
    for field, value in (("og_image", "javascript:alert(1)"), ("og_title", "x" * 301)):
        response = await api.post("/api/v1/links", json={"url": TARGET, field: value})
        assert response.status_code == 422, field
        assert response.json()["errors"][0]["field"] == field
    code = (await create(api, url=TARGET, og_title="T", og_description="D"))["code"]
    cleared = await api.patch(
        f"/api/v1/links/{code}", json={"og_title": None}, headers={"If-Match": "*"}
    )
    assert cleared.json()["og_title"] is None
    assert cleared.json()["og_description"] == "D"


async def test_resolve_link_gives_an_edge_proxy_the_preview_for_a_bot(
    api: httpx.AsyncClient, edge: Rpc
) -> None:
    code = (await create(api, url=TARGET, max_visits=1, og_title="Plans"))["code"]
    for _ in range(2):
        bot = pb.ResolveLinkRequest(code=code, client_ip="192.0.2.1", user_agent="Discordbot/2.0")
        reply = (await edge.ok("ResolveLink", bot)).message
        assert reply.location == ""
        assert reply.HasField("preview")
        assert reply.preview.og_title == "Plans"
        assert reply.preview.password_protected is False
    person = pb.ResolveLinkRequest(code=code, client_ip="192.0.2.2", user_agent=FIREFOX)
    reply = (await edge.ok("ResolveLink", person)).message
    assert reply.location == TARGET
    assert not reply.HasField("preview")
