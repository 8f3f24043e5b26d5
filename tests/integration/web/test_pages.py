"""The pages behind the one-time links: plain forms that work without JavaScript, under
a strict Content-Security-Policy, with errors beside their fields and never JSON or a
500. On SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from kurz.accounts import Passwords
from kurz.accounts import users as user_rows
from kurz.accounts.models import UserInvite
from kurz.accounts.service import Actor, Users
from kurz.db import Database
from kurz.links.codes import code_in, is_code
from kurz.web import assets
from tests.integration.auth.people import PASSWORD, client, new_session, new_user, sessions_of
from tests.integration.web.people import assert_page
from tests.support import FakeClock

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client(app) as http:
        yield http


@pytest.fixture
def service(app: FastAPI) -> Users:
    users: Users = app.state.kurz.users
    return users


def path_of(url: str) -> str:
    return url.removeprefix("https://kurz.test")


def error_beside(page: str, field: str) -> str:
    """The error shown right after `field`'s input (which names it, and its hint if it
    has one, as what describes it); fails if there is none."""
    found = re.search(
        rf'<input id="{field}"[^>]*aria-describedby="{field}-error(?: {field}-hint)?">\s*'
        rf'<p class="error" id="{field}-error">([^<]*)</p>',
        page,
    )
    assert found is not None, page
    return found.group(1)


def test_no_page_path_can_be_a_code() -> None:
    for path in ("/_/setup/abc", "/_/invite/abc", "/_/reset/abc", assets.url("kurz.css")):
        assert code_in(path) is None
        assert not is_code(path[1:])


async def test_the_setup_page_is_a_plain_form_under_a_strict_policy(
    service: Users, browser: httpx.AsyncClient
) -> None:
    url = await service.setup_link()
    assert url is not None
    page = assert_page(await browser.get(path_of(url)), 200)
    assert f'<form method="post" action="{path_of(url)}">' in page
    for field in ("email", "display_name", "password", "password_again"):
        assert f'name="{field}"' in page
    assert f'<link rel="stylesheet" href="{assets.url("kurz.css")}">' in page
    css = await browser.get(assets.url("kurz.css"))
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert css.headers["x-content-type-options"] == "nosniff"
    assert b"font" in css.content


async def test_a_short_password_is_shown_beside_its_field_and_the_link_stays_usable(
    db: Database, service: Users, browser: httpx.AsyncClient
) -> None:
    url = await service.setup_link()
    assert url is not None
    short = {"email": "Ada@Example.com", "password": "short", "password_again": "short"}
    page = assert_page(await browser.post(path_of(url), data=short), 422)
    assert error_beside(page, "password") == "A password has at least 8 characters."
    # What was typed is kept, but no password is sent back.
    assert 'value="Ada@Example.com"' in page
    assert 'value="short"' not in page
    differ = {"email": "nobody", "password": PASSWORD, "password_again": PASSWORD + "!"}
    page = assert_page(await browser.post(path_of(url), data=differ), 422)
    assert error_beside(page, "password_again") == "The two passwords differ."
    assert "looks like name@example.com" in error_beside(page, "email")
    async with db.read() as conn:
        assert await user_rows.by_email(conn, "ada@example.com") is None
    good = {"email": "Ada@Example.com", "password": PASSWORD, "password_again": PASSWORD}
    done = assert_page(await browser.post(path_of(url), data=good), 200)
    assert "The admin ada@example.com is made" in done
    async with db.read() as conn:
        admin = await user_rows.by_email(conn, "ada@example.com")
    assert admin is not None
    assert admin.role == "admin"
    spent = assert_page(await browser.get(path_of(url)), 410)
    assert "expired, was used already, or never existed" in spent


async def test_a_taken_address_is_shown_beside_the_email_field(
    db: Database, clock: FakeClock, service: Users, browser: httpx.AsyncClient
) -> None:
    await new_user(db, clock, "taken@example.com", role="admin")
    url = await service.setup_link()
    assert url is not None
    body = {"email": "TAKEN@example.com", "password": PASSWORD, "password_again": PASSWORD}
    page = assert_page(await browser.post(path_of(url), data=body), 409)
    assert error_beside(page, "email") == "An account has this address."


async def test_an_invitation_page_names_the_address_and_makes_the_account(
    app: FastAPI, db: Database, service: Users, browser: httpx.AsyncClient
) -> None:
    made = await service.invite(
        invite=UserInvite(email="guest@example.com", role="member"), actor=Actor()
    )
    path = path_of(made.invitation_url)
    page = assert_page(await browser.get(path), 200)
    assert "guest@example.com (member)" in page
    assert 'name="email"' not in page
    differ = {"password": PASSWORD, "password_again": "something else"}
    again = assert_page(await browser.post(path, data=differ), 422)
    assert "guest@example.com (member)" in again
    assert error_beside(again, "password_again") == "The two passwords differ."
    body = {"display_name": "Guest", "password": PASSWORD, "password_again": PASSWORD}
    done = assert_page(await browser.post(path, data=body), 200)
    assert "guest@example.com" in done
    passwords: Passwords = app.state.kurz.passwords
    async with db.read() as conn:
        guest = await user_rows.by_email(conn, "guest@example.com")
    assert guest is not None
    assert guest.display_name == "Guest"
    assert guest.password_hash is not None
    assert passwords.verify(guest.password_hash, PASSWORD)
    assert_page(await browser.post(path, data=body), 410)


async def test_a_reset_page_sets_the_password_and_ends_sessions(
    app: FastAPI, db: Database, clock: FakeClock, service: Users, browser: httpx.AsyncClient
) -> None:
    user_id = await new_user(db, clock, "reset@example.com")
    await new_session(db, clock, user_id)
    link = await service.reset_link(user_id=user_id, actor=Actor())
    path = path_of(link.reset_url)
    assert "Choose a new password" in assert_page(await browser.get(path), 200)
    new = "a new passphrase here"
    assert_page(await browser.post(path, data={"password": new, "password_again": new}), 200)
    assert await sessions_of(db, user_id) == 0
    passwords: Passwords = app.state.kurz.passwords
    async with db.read() as conn:
        user = await user_rows.by_email(conn, "reset@example.com")
    assert user is not None
    assert user.password_hash is not None
    assert passwords.verify(user.password_hash, new)


@pytest.mark.parametrize("kind", ["setup", "invite", "reset"])
async def test_a_bad_link_is_a_page_never_json(browser: httpx.AsyncClient, kind: str) -> None:
    assert "never existed" in assert_page(await browser.get(f"/_/{kind}/nonsense"), 410)
    assert_page(await browser.post(f"/_/{kind}/nonsense", data={"password": "x"}), 410)
    assert_page(await browser.get(f"/_/{kind}/{'x' * 5000}"), 410)


async def test_a_body_that_is_no_form_is_a_page_with_errors_never_a_500(
    service: Users, browser: httpx.AsyncClient
) -> None:
    url = await service.setup_link()
    assert url is not None
    for body in (b"\xff\xfe=\x00", b"a=1&" * 100, b'{"email": "json@example.com"}', b""):
        page = assert_page(await browser.post(path_of(url), content=body, headers=FORM), 422)
        assert 'class="error"' in page
