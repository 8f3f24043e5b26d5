"""Signing in and out through the web app's forms, the account page, and /docs from
kurz's own files. On SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI

from kurz.accounts import Passwords
from kurz.auth.cookies import cookie_name
from kurz.db import Database
from kurz.links.codes import code_in
from kurz.web import assets
from tests.integration.auth.people import PASSWORD, client, new_user, sessions_of
from tests.integration.web.people import assert_page, browser_of, error_beside
from tests.support import FakeClock


@pytest.fixture
def passwords(app: FastAPI) -> Passwords:
    found: Passwords = app.state.kurz.passwords
    return found


async def test_signing_in_sends_the_browser_back_where_it_was_going(
    app: FastAPI, db: Database, clock: FakeClock, passwords: Passwords
) -> None:
    await new_user(db, clock, "ada@example.com", passwords=passwords)
    async with client(app) as http:
        away = await http.get("/_/account?q=x")
        assert away.status_code == 303
        assert away.headers["location"] == "/_/signin?next=/_/account%3Fq%3Dx"
        page = assert_page(await http.get(away.headers["location"]))
        assert '<input type="hidden" name="next" value="/_/account?q=x">' in page
        wrong = {"email": "ada@example.com", "password": "wrong!", "next": "/_/account?q=x"}
        page = assert_page(await http.post("/_/signin", data=wrong), 401)
        assert "The email or password is wrong" in page
        assert 'value="ada@example.com"' in page
        right = {**wrong, "password": PASSWORD}
        done = await http.post("/_/signin", data=right)
        assert done.status_code == 303
        assert done.headers["location"] == "/_/account?q=x"
        assert http.cookies.get(cookie_name(app.state.kurz.settings))
        assert_page(await http.get("/_/dashboard"))


@pytest.mark.parametrize("elsewhere", ["//evil.example/", "https://evil.example/", "/\\evil", "/x"])
async def test_sign_in_never_sends_the_browser_to_another_site(
    app: FastAPI, db: Database, clock: FakeClock, passwords: Passwords, elsewhere: str
) -> None:
    await new_user(db, clock, "ada@example.com", passwords=passwords)
    async with client(app) as http:
        sent = {"email": "ada@example.com", "password": PASSWORD, "next": elsewhere}
        done = await http.post("/_/signin", data=sent)
        assert done.status_code == 303
        assert done.headers["location"] == "/_/dashboard"


async def test_a_sign_in_posted_from_another_site_is_refused(
    app: FastAPI, db: Database, clock: FakeClock, passwords: Passwords
) -> None:
    await new_user(db, clock, "mallory@example.com", passwords=passwords)
    async with client(app) as http:
        sent = {"email": "mallory@example.com", "password": PASSWORD}
        page = assert_page(
            await http.post("/_/signin", data=sent, headers={"Sec-Fetch-Site": "cross-site"}),
            403,
        )
        assert "another site" in page
        assert not http.cookies
        done = await http.post("/_/signin", data=sent, headers={"Sec-Fetch-Site": "same-origin"})
        assert done.status_code == 303


async def test_sign_out_needs_the_csrf_token_and_ends_the_session(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        refused = await ada.post_form("/_/signout", csrf=False)
        assert "CSRF" in assert_page(refused, 403)
        assert await sessions_of(db, ada.user_id) == 1
        done = await ada.post_form("/_/signout")
        assert done.status_code == 303
        assert await sessions_of(db, ada.user_id) == 0
        after = await ada.http.get("/_/dashboard")
        assert after.status_code == 303
        assert after.headers["location"].startswith("/_/signin")


async def test_the_root_leads_to_sign_in_or_the_dashboard(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with client(app) as http:
        root = await http.get("/")
        assert (root.status_code, root.headers["location"]) == (303, "/_/signin")
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        root = await ada.http.get("/")
        assert (root.status_code, root.headers["location"]) == (303, "/_/dashboard")
        page = assert_page(await ada.http.get("/_/dashboard"))
        assert "ada@example.com" in page
        # A member's page has no admin link.
        assert 'href="/_/admin"' not in page


async def test_changing_the_password_shows_errors_beside_their_fields(
    app: FastAPI, db: Database, clock: FakeClock, passwords: Passwords
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        differ = {"current_password": "x", "new_password": "a" * 12, "new_password_again": "b"}
        page = assert_page(await ada.post_form("/_/account", differ), 422)
        assert error_beside(page, "new_password_again") == "The two passwords differ."
        wrong = {
            "current_password": "nope",
            "new_password": "a" * 12,
            "new_password_again": "a" * 12,
        }
        page = assert_page(await ada.post_form("/_/account", wrong), 422)
        assert "current password" in error_beside(page, "current_password")


async def test_docs_come_from_kurzs_own_files(app: FastAPI) -> None:
    async with client(app) as http:
        page = await http.get("/docs")
        assert page.status_code == 200
        sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert sources, page.text
        assert all(source.startswith(("/_/static/", "/openapi.json")) for source in sources)
        for source in sources:
            if source.startswith("/_/static/"):
                found = await http.get(source, headers={"Accept-Encoding": "gzip"})
                assert found.status_code == 200, source
                assert found.headers["cache-control"] == "public, max-age=31536000, immutable"


async def test_a_hashed_name_changes_with_its_file_and_an_old_one_is_gone(
    app: FastAPI,
) -> None:
    found = assets.assets()
    names = {asset.url for asset in found.by_name.values()}
    assert len(names) == len(found.by_name)
    async with client(app) as http:
        stale = await http.get("/_/static/kurz.000000000000.css")
        assert stale.status_code == 404
        plain = await http.get("/_/static/kurz.css")
        assert plain.headers["cache-control"] == "public, max-age=3600"
        zipped = await http.get(assets.url("vendor/htmx/htmx.min.js"))
        assert zipped.headers["content-encoding"] == "gzip"
        assert zipped.content == found.by_name["vendor/htmx/htmx.min.js"].body


def test_no_page_of_the_web_app_can_be_a_code(app: FastAPI) -> None:
    for route in app.routes:
        path = getattr(route, "path", "")
        if path.startswith("/_/") or path == "/docs":
            sample = re.sub(r"\{[^}]+\}", "abc", path)
            assert code_in(sample) is None, path
            assert code_in(sample + "x") is None, path
    for asset in assets.assets().by_name.values():
        assert code_in(asset.url) is None


async def test_a_signed_out_form_post_goes_to_sign_in_and_changes_nothing(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with client(app) as http:
        posted = await http.post("/_/account", data={"new_password": "x" * 12})
        assert (posted.status_code, posted.headers["location"]) == (303, "/_/signin")


async def test_http_is_not_a_page_but_the_api_answers_json(app: FastAPI) -> None:
    async with client(app) as http:
        api = await http.get("/api/v1/links")
        assert api.headers["content-type"] == "application/problem+json"


async def test_an_unknown_page_is_a_404_page(app: FastAPI, db: Database, clock: FakeClock) -> None:
    async with client(app) as http:
        page = assert_page(await http.get("/_/nothing/here"), 404)
        assert "no page at this address" in page
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        page = assert_page(await ada.http.get("/_/linkz"), 404)
        # Not signed in or signed in, the same page; its layout knows no viewer here.
        assert "no page at this address" in page
