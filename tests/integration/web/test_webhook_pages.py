"""The webhooks pages: one added there shows its secret once and is sent events signed
with it; its deliveries page shows a dead one with its last answer, and redelivers it;
deleting asks first; another user's webhook is a 404 page; errors beside their fields;
a form without its CSRF token changes nothing. On SQLite and PostgreSQL."""

from __future__ import annotations

import html
import re

import pytest
from fastapi import FastAPI

from kurz.config import Settings
from kurz.db import Database
from kurz.jobs import Worker
from tests.conftest import app_settings
from tests.integration.auth import support
from tests.integration.auth.people import client
from tests.integration.web.people import Browser, assert_page, browser_of, error_beside
from tests.integration.webhooks.receiver import Answer, receiving
from tests.integration.webhooks.support import settle
from tests.support import FakeClock


@pytest.fixture
def settings(database_url: str) -> Settings:
    return app_settings(
        database_url,
        webhook_allow_private=True,
        webhook_key="a page test key of 32 characters or more",
    )


def secret_on(page: str) -> str:
    found = re.search(r'<input id="secret" type="text" value="([^"]+)" readonly', page)
    assert found is not None, page
    return html.unescape(found.group(1))


def hook_ids(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'href="/_/webhooks/(\d+)/delete"', page)]


async def add(ada: Browser, url: str, events: list[str]) -> str:
    page = assert_page(await ada.post_form("/_/webhooks", {"url": url, "events": events}), 201)
    return secret_on(page)


async def test_a_webhook_added_on_the_page_is_sent_events_signed_with_its_secret(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    worker = Worker(app.state.kurz.jobs, app.state.kurz.registry, concurrency=32)
    async with receiving() as receiver, browser_of(app, db, clock, "ada@example.com") as ada:
        assert "You have no webhooks yet." in assert_page(await ada.http.get("/_/webhooks"))
        secret = await add(ada, receiver.url, ["link.created"])
        assert secret.startswith("whsec_")
        listed = assert_page(await ada.http.get("/_/webhooks"))
        assert receiver.url in listed
        assert secret not in listed
        [hook_id] = hook_ids(listed)

        made = await ada.post_form("/_/new", {"url": "https://example.com/from-the-page"})
        assert made.status_code in {201, 303}, made.text
        receiver.answers = [Answer(500, b"not now")] * 9
        await settle(worker)
        page = assert_page(await ada.http.get(f"/_/webhooks/{hook_id}"))
        assert "link.created" in page
        assert "HTTP 500" in page
        assert "not now" in page
        assert "Redeliver" not in page  # pending: it is being sent
        for _ in range(8):
            # Past the longest wait (8 h and a fifth).
            clock.advance(10 * 3_600)
            await settle(worker)
            # A visit now and then keeps the session from going idle.
            assert_page(await ada.http.get(f"/_/webhooks/{hook_id}"))
        page = assert_page(await ada.http.get(f"/_/webhooks/{hook_id}"))
        assert "<strong>dead</strong>" in page
        [redeliver] = re.findall(r'action="(/_/webhooks/\d+/deliveries/\d+/redeliver)"', page)
        again = await ada.post_form(redeliver)
        assert again.status_code == 303
        page = assert_page(await ada.http.get(again.headers["location"]))
        assert "is queued again" in page
        await settle(worker)
        assert len(receiver.requests) == 10
        receiver.requests[-1].verified(secret)
        assert "delivered" in assert_page(await ada.http.get(f"/_/webhooks/{hook_id}"))


async def test_errors_are_shown_beside_their_fields(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        sent: dict[str, str | list[str]] = {"url": "ftp://x.example/", "events": []}
        page = assert_page(await ada.post_form("/_/webhooks", sent), 422)
        assert "http or https" in error_beside(page, "url")
        assert error_beside(page, "events")
        # What was typed stays in the form.
        assert 'value="ftp://x.example/"' in page
        assert hook_ids(assert_page(await ada.http.get("/_/webhooks"))) == []


async def test_deleting_asks_first_and_another_users_webhook_is_a_404_page(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        await add(ada, "https://hooks.example/ada", ["link.deleted"])
        [hook_id] = hook_ids(assert_page(await ada.http.get("/_/webhooks")))
        bob = await support.member(db, clock, "bob@example.com")
        async with client(app, bob.secret) as api:
            others = (await api.get(f"/api/v1/webhooks/{hook_id}")).status_code
        assert others == 404
        async with browser_of(app, db, clock, "eve@example.com", role="admin") as eve:
            assert_page(await eve.http.get(f"/_/webhooks/{hook_id}"), 404)
            assert_page(await eve.http.get(f"/_/webhooks/{hook_id}/delete"), 404)
            assert_page(await eve.post_form(f"/_/webhooks/{hook_id}/delete"), 404)
            assert_page(await eve.http.get("/_/webhooks/abc"), 404)

        refused = await ada.post_form(f"/_/webhooks/{hook_id}/delete", csrf=False)
        assert "CSRF" in assert_page(refused, 403)
        assert "Delete it?" in assert_page(await ada.http.get(f"/_/webhooks/{hook_id}/delete"))
        gone = await ada.post_form(f"/_/webhooks/{hook_id}/delete")
        assert gone.status_code == 303
        page = assert_page(await ada.http.get(gone.headers["location"]))
        assert "is deleted" in page
        assert hook_ids(page) == []


async def test_a_form_without_the_csrf_token_adds_nothing(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        sent: dict[str, str | list[str]] = {"url": "https://h.example/", "events": ["link.created"]}
        assert_page(await ada.post_form("/_/webhooks", sent, csrf=False), 403)
        assert hook_ids(assert_page(await ada.http.get("/_/webhooks"))) == []
