"""Password links: a form for browsers and 401 problem+json for others, until the right
password is posted (303 to the target); nothing before that tells the target; wrong
passwords are limited per link and client address, and cost as much on a link that
does not exist. Through every way in: the fast path, the `follow` route, POST and gRPC."""

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
from tests.support import FakeClock

PROBLEM = "application/problem+json"
TARGET = "https://secret.example/plans"
HTML = {"Accept": "text/html"}
RIGHT = {"password": "open sesame"}
WRONG = {"password": "not it"}


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


def from_ip(app: FastAPI, ip: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 40_000))
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL)


def assert_untold(response: httpx.Response) -> None:
    """Nothing in the answer names the target."""
    assert "location" not in response.headers
    assert "secret.example" not in response.text
    assert all("secret.example" not in value for value in response.headers.values())


async def test_a_password_is_write_only_and_checked_on_write(api: httpx.AsyncClient) -> None:
    link = await create(api, url=TARGET, password="open sesame")
    assert link["password_protected"] is True
    assert "password" not in link
    assert "open sesame" not in (await api.get(f"/api/v1/links/{link['code']}")).text
    for bad in ("abc", "x" * 129, 1234):
        response = await api.post("/api/v1/links", json={"url": TARGET, "password": bad})
        assert response.status_code == 422, bad
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["errors"][0]["field"] == "password"
    plain = await create(api, url=TARGET)
    assert plain["password_protected"] is False


async def test_a_visitor_gets_the_form_and_with_the_right_password_the_target(
    app: FastAPI, api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    code = (await create(api, url=TARGET, password="open sesame", forward_query=True))["code"]
    # Twice: the second read comes from L1, where the fast path must still ask.
    for _ in range(2):
        refused = await anon.get(f"/{code}")
        assert refused.status_code == 401
        assert refused.headers["content-type"] == PROBLEM
        assert refused.json()["type"] == "/problems/link-password-required"
        assert refused.headers["www-authenticate"].startswith("LinkPassword")
        assert_untold(refused)
        assert app.state.kurz.targets.l1.get(code) is not None
        assert (await anon.head(f"/{code}")).status_code == 401
    form = await anon.get(f"/{code}?utm=1", headers=HTML)
    assert form.status_code == 401
    assert form.headers["content-type"].startswith("text/html")
    assert f'<form method="post" action="/{code}?utm=1">' in form.text
    assert 'name="password" type="password"' in form.text
    csp = form.headers["content-security-policy"]
    assert "form-action 'self' https: http:" in csp
    assert "script-src" not in csp
    assert form.headers["cache-control"] == "no-store"
    assert_untold(form)

    wrong = await anon.post(f"/{code}?utm=1", data=WRONG, headers=HTML)
    assert wrong.status_code == 401
    assert "That is not the password" in wrong.text
    assert_untold(wrong)
    wrong_json = await anon.post(f"/{code}", data=WRONG)
    assert wrong_json.json()["type"] == "/problems/link-password-wrong"
    assert_untold(wrong_json)

    opened = await anon.post(f"/{code}?utm=1", data=RIGHT, headers=HTML)
    assert opened.status_code == 303
    assert opened.headers["location"] == f"{TARGET}?utm=1"
    assert opened.headers["cache-control"] == "no-store"


async def test_a_password_can_be_changed_and_removed(
    api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    code = (await create(api, url=TARGET, password="open sesame"))["code"]
    assert (await anon.get(f"/{code}")).status_code == 401
    path = f"/api/v1/links/{code}"
    changed = await api.patch(path, json={"password": "another one"}, headers={"If-Match": "*"})
    assert changed.json()["password_protected"] is True
    assert (await anon.post(f"/{code}", data=RIGHT)).status_code == 401
    assert (await anon.post(f"/{code}", data={"password": "another one"})).status_code == 303
    cleared = await api.patch(path, json={"password": None}, headers={"If-Match": "*"})
    assert cleared.json()["password_protected"] is False
    response = await anon.get(f"/{code}")
    assert response.status_code == 302
    assert response.headers["location"] == TARGET


async def test_a_capped_password_link_uses_a_visit_only_when_opened(
    api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    code = (await create(api, url=TARGET, password="open sesame", max_visits=1))["code"]
    # Two wrong ones: the third would use up the limit's burst.
    for _ in range(2):
        assert (await anon.get(f"/{code}")).status_code == 401
        assert (await anon.post(f"/{code}", data=WRONG)).status_code == 401
    assert (await anon.post(f"/{code}", data=RIGHT)).status_code == 303
    used = await anon.post(f"/{code}", data=RIGHT)
    assert used.status_code == 410
    assert used.json()["type"] == "/problems/link-visits-exhausted"


async def test_wrong_passwords_are_limited_per_link_and_address(
    app: FastAPI, api: httpx.AsyncClient
) -> None:
    code = (await create(api, url=TARGET, password="open sesame"))["code"]
    other = (await create(api, url=TARGET, password="open sesame"))["code"]
    async with from_ip(app, "198.51.100.7") as guesser, from_ip(app, "198.51.100.8") as friend:
        for _ in range(3):
            assert (await guesser.post(f"/{code}", data=WRONG)).status_code == 401
        blocked = await guesser.post(f"/{code}", data=WRONG)
        assert blocked.status_code == 429
        assert blocked.json()["type"] == "/problems/rate-limit/link-password"
        assert int(blocked.headers["retry-after"]) > 0
        # Even the right password waits: the guess is refused before it is checked.
        assert (await guesser.post(f"/{code}", data=RIGHT)).status_code == 429
        page = await guesser.post(f"/{code}", data=RIGHT, headers=HTML)
        assert page.status_code == 429
        assert page.headers["content-type"].startswith("text/html")
        # Another link, or another address, has its own budget.
        assert (await guesser.post(f"/{other}", data=RIGHT)).status_code == 303
        assert (await friend.post(f"/{code}", data=RIGHT)).status_code == 303


async def test_a_link_that_does_not_exist_costs_a_wrong_password_s_work(
    app: FastAPI, api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    passwords = app.state.kurz.passwords
    code = (await create(api, url=TARGET, password="open sesame"))["code"]

    async def work(path: str) -> int:
        before = passwords.work
        response = await anon.post(path, data=WRONG)
        assert response.status_code in (401, 404)
        return int(passwords.work - before)

    assert await work(f"/{code}") == 1
    assert await work("/nosuch1") == 1
    # Limited alike: the guesses at a missing code use its budget as well.
    for _ in range(2):
        await work("/nosuch1")
    assert (await anon.post("/nosuch1", data=WRONG)).status_code == 429


async def test_resolve_link_takes_the_password(api: httpx.AsyncClient, rpc: Rpc) -> None:
    code = (await create(api, url=TARGET, password="open sesame"))["code"]
    for password, reason in ((None, "LINK_PASSWORD_REQUIRED"), ("not it", "LINK_PASSWORD_WRONG")):
        request = pb.ResolveLinkRequest(code=code, password=password)
        failure = await rpc.fails("ResolveLink", request)
        assert failure.code == grpc.StatusCode.UNAUTHENTICATED
        assert failure.info.reason == reason
        assert "secret.example" not in failure.message
    reply = await rpc.ok("ResolveLink", pb.ResolveLinkRequest(code=code, password="open sesame"))
    assert reply.message.location == TARGET
    missing = await rpc.fails("ResolveLink", pb.ResolveLinkRequest(code="nosuch1", password="x"))
    assert missing.code == grpc.StatusCode.NOT_FOUND


async def test_grpc_writes_and_reads_the_password_and_preview_fields(rpc: Rpc) -> None:
    request = pb.CreateLinkRequest(
        url=TARGET, password="open sesame", og_title="Plans", og_image="https://img.example/a.png"
    )
    made = (await rpc.ok("CreateLink", request)).message
    assert made.password_protected is True
    assert (made.og_title, made.og_image) == ("Plans", "https://img.example/a.png")
    assert not made.HasField("og_description")
    read = (await rpc.ok("GetLink", pb.GetLinkRequest(code=made.code))).message
    assert read.password_protected is True
    assert read.og_title == "Plans"
    cleared = await rpc.ok(
        "UpdateLink",
        pb.UpdateLinkRequest(
            code=made.code,
            expected_version=made.version,
            update_mask={"paths": ["password", "og_title"]},
        ),
    )
    assert cleared.message.password_protected is False
    assert not cleared.message.HasField("og_title")
    short = await rpc.fails("CreateLink", pb.CreateLinkRequest(url=TARGET, password="abc"))
    assert short.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "password" in short.violations
