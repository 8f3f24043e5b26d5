"""Password links and link-preview bots on a domain other than the default: the Host
picks the link for the form, its POST and gRPC's ResolveLink alike; wrong passwords are
limited per link on its domain; and no fallback or domain redirect stands in for the
password (nor tells the target)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import httpx
import pytest
from fastapi import FastAPI

from kurz.config import Settings
from kurz.grpc.kurz.v1 import links_pb2 as pb
from tests.conftest import BASE_URL
from tests.integration.grpc.support import Rpc, new_key, rpc_client, serving
from tests.integration.links.support import create
from tests.integration.links.test_domains import add_domain
from tests.support import FakeClock

TARGET = "https://secret.example/plans"
PLAIN = "https://e.com/default"
HTML = {"Accept": "text/html"}
RIGHT = {"password": "open sesame"}
WRONG = {"password": "not it"}
GO = {"Host": "go.example"}
DEFAULT = {"Host": "kurz.test"}
SLACKBOT = {"User-Agent": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"}


@pytest.fixture
async def app(settings: Settings, clock: FakeClock) -> AsyncIterator[FastAPI]:
    """With its gRPC server; three wrong passwords per link and address a minute."""
    update = {"ratelimit_link_password": "3/60s;burst=3"}
    async with serving(settings.model_copy(update=update), clock) as app:
        yield app


@pytest.fixture
async def rpc(app: FastAPI, clock: FakeClock) -> AsyncIterator[Rpc]:
    async with rpc_client(app, await new_key(app, clock, "resolver")) as client:
        yield client


@pytest.fixture
async def go(admin: httpx.AsyncClient, api: httpx.AsyncClient) -> None:
    """go.example with every redirect of its own; `plans` on it is a capped password
    link with a used-up fallback, and `plans` on the default domain a plain link."""
    await add_domain(
        admin,
        "go.example",
        not_found_redirect="https://e.com/missing",
        expired_redirect="https://e.com/expired",
        used_up_redirect="https://e.com/used",
    )
    await create(api, alias="plans", url=PLAIN)
    await create(
        api,
        alias="plans",
        url=TARGET,
        domain="go.example",
        password="open sesame",
        max_visits=1,
        fallbacks={"used_up": "https://e.com/own-used"},
    )


def from_ip(app: FastAPI, ip: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 40_000))
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL)


def assert_untold(response: httpx.Response) -> None:
    """Nothing in the answer names the target."""
    assert "secret.example" not in response.text
    assert all("secret.example" not in value for value in response.headers.values())


@pytest.mark.usefixtures("go")
async def test_the_host_picks_the_password_link_for_the_form_and_its_post(
    anon: httpx.AsyncClient,
) -> None:
    # Twice: the second read comes from L1, where the fast path must still ask.
    for _ in range(2):
        asked = await anon.get("/plans", headers={**GO, **HTML})
        assert asked.status_code == 401
        assert '<form method="post" action="/plans">' in asked.text
        assert_untold(asked)
        plain = await anon.get("/plans", headers=DEFAULT)
        assert (plain.status_code, plain.headers["location"]) == (302, PLAIN)
    wrong = await anon.post("/plans", data=WRONG, headers=GO)
    assert (wrong.status_code, wrong.json()["type"]) == (401, "/problems/link-password-wrong")
    assert_untold(wrong)
    opened = await anon.post("/plans", data=RIGHT, headers=GO)
    assert (opened.status_code, opened.headers["location"]) == (303, TARGET)

    # Used up: without the password, still only the form; with it, the link's fallback.
    again = await anon.get("/plans", headers=GO)
    assert again.status_code == 401
    assert_untold(again)
    used = await anon.post("/plans", data=RIGHT, headers=GO)
    assert (used.status_code, used.headers["location"]) == (302, "https://e.com/own-used")
    # A missing code's form post: the domain's not-found redirect, after as much work.
    missing = await anon.post("/nosuch1", data=WRONG, headers=GO)
    assert (missing.status_code, missing.headers["location"]) == (302, "https://e.com/missing")


@pytest.mark.usefixtures("go")
async def test_wrong_passwords_are_limited_per_link_on_its_domain(
    app: FastAPI, api: httpx.AsyncClient
) -> None:
    await api.patch(
        "/api/v1/links/plans", json={"password": "open sesame"}, headers={"If-Match": "*"}
    )
    async with from_ip(app, "198.51.100.7") as guesser:
        for _ in range(3):
            assert (await guesser.post("/plans", data=WRONG, headers=GO)).status_code == 401
        blocked = await guesser.post("/plans", data=RIGHT, headers=GO)
        assert blocked.status_code == 429
        # The same code on the default domain is another link, with its own budget.
        opened = await guesser.post("/plans", data=RIGHT, headers=DEFAULT)
        assert (opened.status_code, opened.headers["location"]) == (303, PLAIN)


async def test_an_expired_password_link_goes_to_the_redirect_not_the_target(
    admin: httpx.AsyncClient, api: httpx.AsyncClient, anon: httpx.AsyncClient, clock: FakeClock
) -> None:
    await add_domain(admin, "go.example", expired_redirect="https://e.com/expired")
    await create(
        api,
        alias="soon",
        url=TARGET,
        domain="go.example",
        password="open sesame",
        expires_at=clock.iso(60),
    )
    preview = await anon.get("/soon", headers={**GO, **SLACKBOT})
    assert preview.status_code == 200
    assert_untold(preview)
    clock.advance(120)
    for headers in (GO, {**GO, **SLACKBOT}):
        ended = await anon.get("/soon", headers=headers)
        assert (ended.status_code, ended.headers["location"]) == (302, "https://e.com/expired")
        assert_untold(ended)
    posted = await anon.post("/soon", data=RIGHT, headers=GO)
    assert (posted.status_code, posted.headers["location"]) == (302, "https://e.com/expired")


@pytest.mark.usefixtures("go")
async def test_resolve_link_picks_the_domain_and_takes_the_password(rpc: Rpc) -> None:
    asked = await rpc.fails("ResolveLink", pb.ResolveLinkRequest(code="plans", domain="GO.example"))
    assert asked.code == grpc.StatusCode.UNAUTHENTICATED
    assert asked.info.reason == "LINK_PASSWORD_REQUIRED"
    assert "secret.example" not in asked.message
    plain = await rpc.ok("ResolveLink", pb.ResolveLinkRequest(code="plans"))
    assert plain.message.location == PLAIN
    request = pb.ResolveLinkRequest(code="plans", domain="go.example", password="open sesame")
    assert (await rpc.ok("ResolveLink", request)).message.location == TARGET
    used = (await rpc.ok("ResolveLink", request)).message
    assert (used.location, used.redirect_status) == ("https://e.com/own-used", 302)
    missing = pb.ResolveLinkRequest(code="nosuch1", domain="go.example", password="x")
    assert (await rpc.ok("ResolveLink", missing)).message.location == "https://e.com/missing"
