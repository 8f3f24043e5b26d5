"""The API keys page: a key made there shows its secret once and works against the API;
revoking asks first, then the API refuses the key; another user's key is a 404 page;
errors beside their fields; a form without its CSRF token changes nothing. On SQLite
and PostgreSQL."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta

from fastapi import FastAPI

from kurz.db import Database
from tests.integration.auth import support
from tests.integration.auth.people import client
from tests.integration.web.people import Browser, assert_page, browser_of, error_beside
from tests.support import FakeClock


def secret_on(page: str) -> str:
    """The secret shown on a new key's page (in its readonly input)."""
    found = re.search(r'<input id="secret" type="text" value="([^"]+)" readonly', page)
    assert found is not None, page
    return html.unescape(found.group(1))


def key_ids(page: str) -> list[int]:
    """The ids of the keys the list offers to revoke."""
    return [int(n) for n in re.findall(r'href="/_/keys/(\d+)/revoke"', page)]


async def make_key(ada: Browser, **fields: str | list[str]) -> str:
    """A key made through the page's form; its secret."""
    sent: dict[str, str | list[str]] = {"name": "ci", "scopes": ["links:read"], **fields}
    page = assert_page(await ada.post_form("/_/keys", sent), 201)
    return secret_on(page)


async def api_answers(app: FastAPI, secret: str) -> int:
    async with client(app, secret) as api:
        return (await api.get("/api/v1/links")).status_code


async def test_a_new_keys_secret_is_shown_once_and_works_against_the_api(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        page = assert_page(await ada.http.get("/_/keys"))
        assert "You have no API keys yet." in page
        # A member is offered only what their role allows.
        assert 'value="links:write"' in page
        assert 'value="admin"' not in page
        assert 'value="metrics:read"' not in page

        sent: dict[str, str | list[str]] = {
            "name": "deploy bot",
            "scopes": ["links:read", "links:write"],
            "expires": "30",
        }
        page = assert_page(await ada.post_form("/_/keys", sent), 201)
        secret = secret_on(page)
        assert 'data-copy-from="secret"' in page
        assert "will not be shown again" in page

        listed = assert_page(await ada.http.get("/_/keys"))
        assert "deploy bot" in listed
        assert secret not in listed
        assert secret[:8] in listed  # its prefix, to tell keys apart
        assert await api_answers(app, secret) == 200
        async with client(app, secret) as api:
            key = (await api.get(f"/api/v1/keys/{key_ids(listed)[0]}")).json()
        assert key["scopes"] == ["links:read", "links:write"]
        expires = datetime.fromisoformat(key["expires_at"]).timestamp()
        assert expires == clock.now + timedelta(days=30).total_seconds()


async def test_a_key_may_expire_at_the_end_of_a_chosen_day(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        secret = await make_key(ada, expires="date", expires_on="2026-03-01")
        async with client(app, secret) as api:
            keys = (await api.get("/api/v1/keys")).json()["items"]
        assert keys[0]["expires_at"].startswith("2026-03-02T00:00:00")


async def test_errors_are_shown_beside_their_fields_and_nothing_is_made(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        page = assert_page(await ada.post_form("/_/keys", {"name": "  "}), 422)
        assert "at least 1 character" in error_beside(page, "name")

        # Today's clock is 2026-01-01: the end of yesterday has passed.
        past = {"name": "old", "expires": "date", "expires_on": "2025-12-30"}
        page = assert_page(await ada.post_form("/_/keys", past), 422)
        assert error_beside(page, "expires_on") == "must be in the future"
        assert 'value="old"' in page  # the form as it was sent

        bad = {"name": "x", "expires": "date", "expires_on": "soon"}
        page = assert_page(await ada.post_form("/_/keys", bad), 422)
        assert "YYYY-MM-DD" in error_beside(page, "expires_on")

        page = assert_page(await ada.post_form("/_/keys", {"name": "x", "expires": "7"}), 422)
        assert error_beside(page, "expires")

        # A scope beyond a member's role, sent by hand.
        page = assert_page(await ada.post_form("/_/keys", {"name": "x", "scopes": "admin"}), 403)
        assert "does not allow `admin`" in html.unescape(error_beside(page, "scopes"))

        assert key_ids(assert_page(await ada.http.get("/_/keys"))) == []


async def test_revoking_asks_first_then_the_api_refuses_the_key(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        secret = await make_key(ada, name="laptop")
        [key_id] = key_ids(assert_page(await ada.http.get("/_/keys")))

        confirm = assert_page(await ada.http.get(f"/_/keys/{key_id}/revoke"))
        assert "laptop" in confirm
        assert f'action="/_/keys/{key_id}/revoke"' in confirm
        assert await api_answers(app, secret) == 200

        done = await ada.post_form(f"/_/keys/{key_id}/revoke")
        assert (done.status_code, done.headers["location"]) == (303, f"/_/keys?revoked={key_id}")
        page = assert_page(await ada.http.get(done.headers["location"]))
        assert "The key “laptop” is revoked" in page
        assert key_ids(page) == []  # no revoke link for a revoked key
        assert await api_answers(app, secret) == 401

        again = assert_page(await ada.http.get(f"/_/keys/{key_id}/revoke"))
        assert "revoked already" in again


async def test_another_users_key_is_a_404_page_for_members_and_admins(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    bob = await support.member(db, clock, "bob@example.com")
    for role in ("member", "admin"):
        async with browser_of(app, db, clock, f"{role}@example.com", role=role) as ada:
            assert_page(await ada.http.get(f"/_/keys/{bob.key_id}/revoke"), 404)
            assert_page(await ada.post_form(f"/_/keys/{bob.key_id}/revoke"), 404)
            # An admin's own list is their own keys, not everyone's.
            assert bob.key_id not in key_ids(assert_page(await ada.http.get("/_/keys")))
            assert_page(await ada.http.get("/_/keys/abc/revoke"), 404)
            assert_page(await ada.http.get(f"/_/keys/{2**64}/revoke"), 404)
            assert_page(await ada.http.get("/_/keys?revoked=abc"), 400)
    assert await api_answers(app, bob.secret) == 200


async def test_an_admin_may_give_a_key_an_admins_scopes(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with browser_of(app, db, clock, "ada@example.com", role="admin") as ada:
        page = assert_page(await ada.http.get("/_/keys"))
        assert 'value="admin"' in page
        secret = await make_key(ada, scopes=["links:read", "admin"])
        async with client(app, secret) as api:
            assert (await api.get("/api/v1/users")).status_code == 200


async def test_forms_without_the_csrf_token_change_nothing(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        refused = await ada.post_form("/_/keys", {"name": "sneaky"}, csrf=False)
        assert "CSRF" in assert_page(refused, 403)
        assert key_ids(assert_page(await ada.http.get("/_/keys"))) == []

        secret = await make_key(ada)
        [key_id] = key_ids(assert_page(await ada.http.get("/_/keys")))
        refused = await ada.post_form(f"/_/keys/{key_id}/revoke", csrf=False)
        assert_page(refused, 403)
        assert await api_answers(app, secret) == 200
