"""One-time links over the API: an invitation makes one account however many use it at
once, a reset sets the password and ends every session, the first-run setup link works
once and only while no admin can sign in; each expires, and bad ones are limited per
client address. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from kurz.accounts import Passwords
from kurz.accounts import users as user_rows
from kurz.accounts.service import Users
from kurz.config import Settings
from kurz.db import Database
from kurz.db.tables import audit_events, users
from tests.integration.auth.people import (
    PASSWORD,
    PROBLEM,
    client,
    new_key,
    new_session,
    new_user,
    sessions_of,
    token_of,
)
from tests.support import FakeClock, running

NEW_PASSWORD = "a new and better passphrase"
HOUR = 3_600.0
WEEK = 7 * 86_400.0


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # 100 requests at once queue for the pool's connections; on a busy machine they may
    # wait longer than the default 5 s, and a 503 is not what this suite checks.
    return settings.model_copy(update={"database_pool_timeout": 120.0})


@pytest.fixture
async def admin(app: FastAPI, db: Database, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    passwords: Passwords = app.state.kurz.passwords
    user_id = await new_user(db, clock, "root@example.com", role="admin", passwords=passwords)
    async with client(app, await new_key(db, clock, user_id, admin=True)) as http:
        yield http


@pytest.fixture
async def anon(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client(app) as http:
        yield http


async def invite(admin: httpx.AsyncClient, email: str, role: str = "member") -> str:
    made = await admin.post("/api/v1/users", json={"email": email, "role": role})
    assert made.status_code == 201, made.text
    return token_of(made.json()["invitation_url"])


async def stored_hash(db: Database, email: str) -> str | None:
    async with db.read() as conn:
        user = await user_rows.by_email(conn, email)
    assert user is not None
    return user.password_hash


def expired(response: httpx.Response) -> bool:
    return response.status_code == 410 and response.json()["type"] == "/problems/link-expired"


async def test_an_invitation_makes_the_account_with_its_role_once(
    app: FastAPI, db: Database, admin: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    token = await invite(admin, "Ines@Example.com", "admin")
    body = {"password": PASSWORD, "display_name": "Ines"}
    joined = await anon.post(f"/api/v1/invitations/{token}", json=body)
    assert joined.status_code == 201, joined.text
    user = joined.json()
    assert (user["email"], user["role"], user["display_name"]) == (
        "ines@example.com",
        "admin",
        "Ines",
    )
    assert user["has_password"] is True
    passwords: Passwords = app.state.kurz.passwords
    password_hash = await stored_hash(db, "ines@example.com")
    assert password_hash is not None
    assert passwords.verify(password_hash, PASSWORD)
    assert expired(await anon.post(f"/api/v1/invitations/{token}", json=body))
    assert (await admin.get("/api/v1/invitations")).json() == []
    async with db.read() as conn:
        event = await conn.scalar(
            sa.select(audit_events.c.event).where(audit_events.c.user_id == user["id"])
        )
    assert event == "user-joined"


async def test_a_hundred_concurrent_accepts_make_exactly_one_account(
    db: Database, admin: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    token = await invite(admin, "crowd@example.com")
    answers = await asyncio.gather(
        *(
            anon.post(f"/api/v1/invitations/{token}", json={"password": f"{PASSWORD} {n}"})
            for n in range(100)
        )
    )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] + [410] * 99
    assert all(a.headers["content-type"] == PROBLEM for a in answers if a.status_code == 410)
    async with db.read() as conn:
        count = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(users)
            .where(users.c.email == "crowd@example.com")
        )
    assert count == 1


async def test_an_invitation_expires_after_seven_days(
    clock: FakeClock, admin: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    late, timely = await invite(admin, "late@example.com"), await invite(admin, "ok@example.com")
    clock.advance(WEEK - 1)
    body = {"password": PASSWORD}
    assert (await anon.post(f"/api/v1/invitations/{timely}", json=body)).status_code == 201
    clock.advance(1)
    assert expired(await anon.post(f"/api/v1/invitations/{late}", json=body))
    assert (await admin.get("/api/v1/invitations")).json() == []


async def test_a_new_invitation_to_an_address_replaces_the_unused_one(
    admin: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    first = await invite(admin, "twice@example.com")
    second = await invite(admin, "twice@example.com", "admin")
    body = {"password": PASSWORD}
    assert expired(await anon.post(f"/api/v1/invitations/{first}", json=body))
    joined = await anon.post(f"/api/v1/invitations/{second}", json=body)
    assert joined.json()["role"] == "admin"


async def test_a_refused_accept_leaves_the_invitation_usable(
    db: Database, clock: FakeClock, admin: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    token = await invite(admin, "careful@example.com")
    for body, field in [
        ({"password": "short"}, "password"),
        ({"password": "x" * 1025}, "password"),
        ({"password": PASSWORD, "display_name": "bell\x07"}, "display_name"),
        ({}, "password"),
        ({"password": PASSWORD, "role": "admin"}, "role"),
    ]:
        refused = await anon.post(f"/api/v1/invitations/{token}", json=body)
        assert refused.status_code == 422, body
        assert [error["field"] for error in refused.json()["errors"]] == [field]
    # The address got an account meanwhile: the unique index refuses the second one.
    await new_user(db, clock, "careful@example.com")
    taken = await anon.post(f"/api/v1/invitations/{token}", json={"password": PASSWORD})
    assert taken.status_code == 409
    assert taken.json()["type"] == "/problems/email-taken"


async def test_a_reset_sets_the_password_and_ends_every_session(
    app: FastAPI, db: Database, clock: FakeClock, admin: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    passwords: Passwords = app.state.kurz.passwords
    user_id = await new_user(db, clock, "forgot@example.com", passwords=passwords)
    for _ in range(2):
        await new_session(db, clock, user_id)
    older = token_of((await admin.post(f"/api/v1/users/{user_id}/reset-link")).json()["reset_url"])
    made = await admin.post(f"/api/v1/users/{user_id}/reset-link")
    token = token_of(made.json()["reset_url"])
    assert expired(await anon.post(f"/api/v1/password-resets/{older}", json={"password": "x" * 9}))
    short = await anon.post(f"/api/v1/password-resets/{token}", json={"password": "short"})
    assert short.status_code == 422
    assert await sessions_of(db, user_id) == 2
    done = await anon.post(f"/api/v1/password-resets/{token}", json={"password": NEW_PASSWORD})
    assert done.status_code == 204
    assert done.content == b""
    assert await sessions_of(db, user_id) == 0
    password_hash = await stored_hash(db, "forgot@example.com")
    assert password_hash is not None
    assert passwords.verify(password_hash, NEW_PASSWORD)
    assert not passwords.verify(password_hash, PASSWORD)
    again = await anon.post(f"/api/v1/password-resets/{token}", json={"password": PASSWORD})
    assert expired(again)


async def test_a_reset_link_expires_after_seven_days(
    db: Database, clock: FakeClock, admin: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    user_id = await new_user(db, clock, "slow@example.com")
    made = await admin.post(f"/api/v1/users/{user_id}/reset-link")
    clock.advance(WEEK)
    late = await anon.post(
        f"/api/v1/password-resets/{token_of(made.json()['reset_url'])}",
        json={"password": NEW_PASSWORD},
    )
    assert expired(late)
    assert await stored_hash(db, "slow@example.com") is None


async def test_the_setup_link_makes_the_first_admin_once(
    app: FastAPI, db: Database, anon: httpx.AsyncClient
) -> None:
    service: Users = app.state.kurz.users
    url = await service.setup_link()
    assert url is not None
    assert url.startswith("https://kurz.test/_/setup/")
    body = {"email": " First@Example.com", "password": PASSWORD, "display_name": "First"}
    made = await anon.post(f"/api/v1/setup/{token_of(url)}", json=body)
    assert made.status_code == 201, made.text
    assert (made.json()["email"], made.json()["role"]) == ("first@example.com", "admin")
    assert expired(await anon.post(f"/api/v1/setup/{token_of(url)}", json=body))
    # An admin can sign in now: no link is offered.
    assert await service.setup_link() is None


async def test_a_setup_link_is_refused_once_an_admin_can_sign_in(
    app: FastAPI, anon: httpx.AsyncClient
) -> None:
    service: Users = app.state.kurz.users
    url = await service.setup_link()
    assert url is not None
    await service.create(email="boss@example.com", password=PASSWORD, role="admin")
    late = await anon.post(
        f"/api/v1/setup/{token_of(url)}", json={"email": "me@example.com", "password": PASSWORD}
    )
    assert expired(late)
    assert "admin can sign in" in late.json()["detail"]


async def test_a_setup_link_expires_after_an_hour_and_a_new_one_replaces_it(
    app: FastAPI, clock: FakeClock, anon: httpx.AsyncClient
) -> None:
    service: Users = app.state.kurz.users
    body = {"email": "first@example.com", "password": PASSWORD}
    old, new = await service.setup_link(), await service.setup_link()
    assert old is not None
    assert new is not None
    assert expired(await anon.post(f"/api/v1/setup/{token_of(old)}", json=body))
    clock.advance(HOUR)
    assert expired(await anon.post(f"/api/v1/setup/{token_of(new)}", json=body))
    newest = await service.setup_link()
    assert newest is not None
    clock.advance(HOUR - 1)
    assert (await anon.post(f"/api/v1/setup/{token_of(newest)}", json=body)).status_code == 201


async def test_setup_validates_its_fields(app: FastAPI, anon: httpx.AsyncClient) -> None:
    service: Users = app.state.kurz.users
    url = await service.setup_link()
    assert url is not None
    for body, field in [
        ({"email": "nobody", "password": PASSWORD}, "email"),
        ({"email": "a@example.com", "password": "1234567"}, "password"),
        ({"password": PASSWORD}, "email"),
    ]:
        refused = await anon.post(f"/api/v1/setup/{token_of(url)}", json=body)
        assert refused.status_code == 422
        assert [error["field"] for error in refused.json()["errors"]] == [field]


@pytest.mark.parametrize("route", ["invitations", "password-resets", "setup"])
async def test_bad_links_count_against_the_clients_auth_fail_limit(
    settings: Settings, clock: FakeClock, route: str
) -> None:
    limited = settings.model_copy(update={"ratelimit_auth_fail": "2/60s;burst=2"})
    body = {"password": PASSWORD} | ({"email": "a@example.com"} if route == "setup" else {})
    async with running(limited, clock) as app, client(app) as anon:
        for _ in range(2):
            assert expired(await anon.post(f"/api/v1/{route}/guess", json=body))
        limited_out = await anon.post(f"/api/v1/{route}/guess", json=body)
        assert limited_out.status_code == 429
        assert limited_out.json()["type"] == "/problems/rate-limit/auth-fail"
        assert int(limited_out.headers["retry-after"]) >= 1
        clock.advance(60)
        assert expired(await anon.post(f"/api/v1/{route}/{'x' * 500}", json=body))
