"""The webhooks API: registering (with its secret, once), listing, changing,
rotating, deleting; each user's own; the URLs refused."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from kurz.auth import queries as key_queries
from kurz.auth.models import ApiKeyCreate
from kurz.clock import utcnow
from kurz.config import Settings
from kurz.db import READ_COMMITTED, Database
from kurz.jobs import Worker
from tests.conftest import BASE_URL, KeyMaker, app_settings
from tests.integration.webhooks.conftest import KEY
from tests.integration.webhooks.receiver import Receiver
from tests.integration.webhooks.support import HOOKS, LINKS, register, settle
from tests.support import FakeClock, running

HOOK = {"url": "https://hooks.example/in", "events": ["link.created"]}


async def test_a_webhook_is_registered_with_its_secret_shown_once(api: httpx.AsyncClient) -> None:
    made = await api.post(HOOKS, json={**HOOK, "events": ["link.deleted", "link.created"]})
    assert made.status_code == 201
    body = made.json()
    assert made.headers["location"] == f"{HOOKS}/{body['id']}"
    assert body["secret"].startswith("whsec_")
    assert len(base64.b64decode(body["secret"].removeprefix("whsec_"))) == 32
    assert body["events"] == ["link.created", "link.deleted"]
    assert body["enabled"] is True
    shown = (await api.get(f"{HOOKS}/{body['id']}")).json()
    assert "secret" not in shown
    assert shown == {key: value for key, value in body.items() if key != "secret"}
    assert "secret" not in (await api.get(HOOKS)).json()["items"][0]


async def test_pages_are_newest_first_by_keyset(api: httpx.AsyncClient) -> None:
    ids = [(await register(api, f"https://hooks.example/{n}"))["id"] for n in range(5)]
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await api.get(HOOKS, params=params)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]
    assert (await api.get(HOOKS, params={"cursor": "nope"})).status_code == 422


async def test_a_change_changes_only_what_is_sent(api: httpx.AsyncClient) -> None:
    hook = await register(api, "https://hooks.example/a")
    one = f"{HOOKS}/{hook['id']}"
    changed = await api.patch(one, json={"events": ["link.clicked"], "description": "clicks"})
    assert changed.status_code == 200
    assert (changed.json()["url"], changed.json()["events"]) == (
        "https://hooks.example/a",
        ["link.clicked"],
    )
    assert (await api.patch(one, json={"url": None})).status_code == 422
    assert (await api.patch(one, json={"events": ["link.eaten"]})).status_code == 422
    assert (await api.patch(one, json={"url": "https://u:p@hooks.example/"})).status_code == 422
    assert (await api.delete(one)).status_code == 204
    assert (await api.get(one)).status_code == 404


async def test_another_users_webhook_is_not_found_even_for_an_admin(
    api: httpx.AsyncClient, make_key: KeyMaker, client_for: Callable[[str], httpx.AsyncClient]
) -> None:
    hook = await register(api, "https://hooks.example/mine")
    one = f"{HOOKS}/{hook['id']}"
    async with client_for(await make_key("root", admin=True)) as admin:
        assert (await admin.get(HOOKS)).json()["items"] == []
        for method, path in [
            ("GET", one),
            ("PATCH", one),
            ("DELETE", one),
            ("POST", f"{one}/rotate-secret"),
            ("GET", f"{one}/deliveries"),
            ("GET", f"{one}/deliveries/1"),
            ("POST", f"{one}/deliveries/1/redeliver"),
        ]:
            answered = await admin.request(method, path, json={} if method == "PATCH" else None)
            assert answered.status_code == 404, (method, path)
    assert (await api.get(one)).status_code == 200


async def test_a_key_needs_the_webhooks_scope(app: FastAPI, db: Database, clock: FakeClock) -> None:
    async with db.write(READ_COMMITTED) as conn:
        made = await key_queries.create(
            conn=conn, key_in=ApiKeyCreate(name="links only"), now=utcnow(clock)
        )
    assert "webhooks" not in made.scopes
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=BASE_URL,
        headers={"Authorization": f"Bearer {made.secret}"},
    ) as api:
        refused = await api.post(HOOKS, json=HOOK)
    assert refused.status_code == 403
    assert refused.json()["type"] == "/problems/insufficient-scope"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://hooks.example/", "http or https"),
        ("https://user:pw@hooks.example/", "credentials"),
        ("https:///nohost", "host"),
        ("https://hooks.example/#frag", "fragment"),
        ("https://hooks.exämple/", "ASCII"),
        ("https://hooks.example:99999/", "port"),
    ],
)
async def test_a_url_that_cannot_be_a_webhook_is_refused(
    api: httpx.AsyncClient, url: str, why: str
) -> None:
    refused = await api.post(HOOKS, json={**HOOK, "url": url})
    assert refused.status_code == 422
    assert why in refused.json()["detail"]


async def test_a_rotated_secret_signs_beside_the_new_one_until_it_expires(
    api: httpx.AsyncClient, worker: Worker, receiver: Receiver, clock: FakeClock
) -> None:
    hook = await register(api, receiver.url)
    rotate = f"{HOOKS}/{hook['id']}/rotate-secret"
    rotated = (await api.post(rotate, json={"expire_previous_in": 3_600})).json()
    assert rotated["secret"] != hook["secret"]
    assert rotated["previous_secret_expires_at"] == clock.iso(3_600).replace("+00:00", "Z")
    await api.post(LINKS, json={"url": "https://example.com/both"})
    await settle(worker)
    [both] = receiver.requests
    assert len(both.headers["webhook-signature"].split(" ")) == 2
    both.verified(hook["secret"])
    both.verified(rotated["secret"])
    clock.advance(3_601)
    await api.post(LINKS, json={"url": "https://example.com/new-only"})
    await settle(worker)
    new_only = receiver.requests[1]
    new_only.verified(rotated["secret"])
    with pytest.raises(AssertionError, match="bad signature"):
        new_only.verified(hook["secret"])
    # Rotating at once: the old one stops now.
    now = (await api.post(rotate)).json()
    assert now["previous_secret_expires_at"] is None


@pytest.fixture
def private_refused(database_url: str) -> Settings:
    return app_settings(database_url, webhook_key=KEY)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/",
        "http://localhost/",
        "http://10.1.2.3/",
        "http://[::1]/",
        "http://[::ffff:192.168.0.1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/",
    ],
)
async def test_a_private_address_is_refused_unless_allowed(
    private_refused: Settings, clock: FakeClock, url: str
) -> None:
    async with running(private_refused, clock) as app:
        parts = app.state.kurz
        async with parts.db.write(READ_COMMITTED) as conn:
            made = await key_queries.create(
                conn=conn,
                key_in=ApiKeyCreate(name="k", scopes=["webhooks"]),
                now=utcnow(clock),
            )
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url=BASE_URL,
            headers={"Authorization": f"Bearer {made.secret}"},
        ) as api:
            refused = await api.post(HOOKS, json={**HOOK, "url": url})
    assert refused.status_code == 422, refused.text
    assert "refused there" in refused.json()["detail"]


async def test_a_metadata_address_is_refused_even_where_private_ones_are_allowed(
    api: httpx.AsyncClient,
) -> None:
    refused = await api.post(HOOKS, json={**HOOK, "url": "http://169.254.169.254/"})
    assert refused.status_code == 422
    assert "metadata" in refused.json()["detail"]
    assert (await api.post(HOOKS, json={**HOOK, "url": "http://127.0.0.1:9/"})).status_code == 201


async def test_without_a_key_postgresql_refuses_webhooks(
    postgres_url: str, clock: FakeClock
) -> None:
    async with running(app_settings(postgres_url), clock) as app:
        parts = app.state.kurz
        async with parts.db.write(READ_COMMITTED) as conn:
            made = await key_queries.create(
                conn=conn, key_in=ApiKeyCreate(name="k", scopes=["webhooks"]), now=utcnow(clock)
            )
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url=BASE_URL,
            headers={"Authorization": f"Bearer {made.secret}"},
        ) as api:
            refused = await api.post(HOOKS, json=HOOK)
    assert refused.status_code == 503
    assert refused.json()["type"] == "/problems/webhooks-not-configured"
