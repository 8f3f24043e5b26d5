"""Users over the API, as an admin manages them: listing, inviting, changing, disabling
and deleting, with their links reassigned or deleted; members get 403. Embedded and
scaled out (PostgreSQL, Redis, L2 nodes), so that a deleted link leaves every tier."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from kurz.accounts import Passwords
from kurz.config import Settings
from kurz.db import Database
from kurz.db.tables import audit_events, users
from tests.conftest import Deployment
from tests.integration.auth.people import (
    PROBLEM,
    client,
    new_key,
    new_session,
    new_user,
    sessions_of,
)
from tests.integration.links.support import create
from tests.support import FakeClock

USERS = "/api/v1/users"


@pytest.fixture
def settings(deployment: Deployment) -> Settings:
    return deployment.settings()


@dataclass
class Admin:
    user_id: int
    http: httpx.AsyncClient


@pytest.fixture
async def admin(app: FastAPI, db: Database, clock: FakeClock) -> AsyncIterator[Admin]:
    """The only admin, with a password, calling with an admin key."""
    passwords: Passwords = app.state.kurz.passwords
    user_id = await new_user(db, clock, "root@example.com", role="admin", passwords=passwords)
    async with client(app, await new_key(db, clock, user_id, admin=True)) as http:
        yield Admin(user_id, http)


async def member(app: FastAPI, db: Database, clock: FakeClock, email: str) -> tuple[int, str]:
    user_id = await new_user(db, clock, email)
    return user_id, await new_key(db, clock, user_id)


async def events(db: Database, user_id: int) -> list[str]:
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(audit_events.c.event)
            .where(audit_events.c.user_id == user_id)
            .order_by(audit_events.c.id)
        )
        return [row.event for row in rows]


async def test_an_admin_lists_users_by_page_and_filter(
    app: FastAPI, db: Database, clock: FakeClock, admin: Admin
) -> None:
    ids = [admin.user_id] + [
        (await member(app, db, clock, f"m{n}@example.com"))[0] for n in range(3)
    ]
    first = (await admin.http.get(USERS, params={"limit": 2})).json()
    assert [user["id"] for user in first["items"]] == ids[:2]
    second = await admin.http.get(USERS, params={"limit": 2, "cursor": first["next_cursor"]})
    assert [user["id"] for user in second.json()["items"]] == ids[2:]
    assert second.json()["next_cursor"] is None
    root = first["items"][0]
    assert root["email"] == "root@example.com"
    assert root["role"] == "admin"
    assert root["has_password"] is True
    assert root["disabled"] is False
    assert "password_hash" not in root
    admins = (await admin.http.get(USERS, params={"role": "admin"})).json()["items"]
    assert [user["id"] for user in admins] == [admin.user_id]
    await admin.http.patch(f"{USERS}/{ids[3]}", json={"disabled": True})
    disabled = (await admin.http.get(USERS, params={"disabled": "true"})).json()["items"]
    assert [user["id"] for user in disabled] == [ids[3]]
    for bad in ({"cursor": "x"}, {"limit": 0}, {"role": "owner"}):
        response = await admin.http.get(USERS, params=bad)
        assert response.status_code == 422, bad
        assert response.headers["content-type"] == PROBLEM


async def test_a_member_gets_403_on_every_users_route(
    app: FastAPI, db: Database, clock: FakeClock, admin: Admin
) -> None:
    user_id, secret = await member(app, db, clock, "mia@example.com")
    async with client(app, secret) as mia:
        for method, path, body in [
            ("GET", USERS, None),
            ("POST", USERS, {"email": "x@example.com"}),
            ("GET", "/api/v1/invitations", None),
            ("GET", f"{USERS}/{admin.user_id}", None),
            ("GET", f"{USERS}/{user_id}", None),
            ("PATCH", f"{USERS}/{user_id}", {"role": "admin"}),
            ("DELETE", f"{USERS}/{admin.user_id}?links=delete", None),
            ("POST", f"{USERS}/{admin.user_id}/reset-link", None),
        ]:
            response = await mia.request(method, path, json=body)
            assert response.status_code == 403, (method, path)
            assert response.json()["type"] == "/problems/insufficient-scope"
    async with db.read() as conn:
        role = await conn.scalar(sa.select(users.c.role).where(users.c.id == user_id))
    assert role == "member"


async def test_inviting_answers_the_invitation_with_its_link(
    db: Database, clock: FakeClock, admin: Admin
) -> None:
    invited = await admin.http.post(USERS, json={"email": " Neu@Example.COM ", "role": "admin"})
    assert invited.status_code == 201, invited.text
    body = invited.json()
    assert body["email"] == "neu@example.com"
    assert body["role"] == "admin"
    assert body["invited_by"] == admin.user_id
    assert body["invitation_url"].startswith("https://kurz.test/_/invite/")
    assert body["invitation_expires_at"] == clock.iso(7 * 86_400).replace("+00:00", "Z")
    pending = (await admin.http.get("/api/v1/invitations")).json()
    assert [(i["email"], i["role"]) for i in pending] == [("neu@example.com", "admin")]
    assert "invitation_url" not in pending[0]
    # The user is made when the invitation is accepted.
    assert (await admin.http.get(USERS)).json()["items"][-1]["email"] == "root@example.com"
    assert await events(db, admin.user_id) == []
    taken = await admin.http.post(USERS, json={"email": "ROOT@example.com"})
    assert taken.status_code == 409
    assert taken.json()["type"] == "/problems/email-taken"


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("  Bob@Example.COM\t", "bob@example.com"),
        ("jürgen@bücher.example", "jürgen@xn--bcher-kva.example"),
        ("ren\u0065\u0301@example.com", "ren\u00e9@example.com"),
        ("", None),
        ("no-at-sign", None),
        ("two words@example.com", None),
        ("a" * 300, None),
        ("a@" + "b" * 290 + ".com", None),
        ("a" * 70 + "@example.com", None),
        ("\ud800@example.com", None),
        (12, None),
        (None, None),
    ],
)
async def test_odd_emails_are_normalised_or_a_422_naming_email(
    admin: Admin, typed: object, kept: str | None
) -> None:
    # json.dumps escapes a lone surrogate as JSON may ("\ud800"); httpx's encoder cannot.
    body = json.dumps({"email": typed})
    response = await admin.http.post(
        USERS, content=body, headers={"Content-Type": "application/json"}
    )
    if kept is None:
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == PROBLEM
        assert [error["field"] for error in response.json()["errors"]] == ["email"]
    else:
        assert response.status_code == 201, response.text
        assert response.json()["email"] == kept


async def test_an_admin_changes_role_and_name_and_each_change_is_audited(
    app: FastAPI, db: Database, clock: FakeClock, admin: Admin
) -> None:
    user_id, secret = await member(app, db, clock, "max@example.com")
    changed = await admin.http.patch(
        f"{USERS}/{user_id}", json={"role": "admin", "display_name": "Max"}
    )
    assert changed.status_code == 200
    assert (changed.json()["role"], changed.json()["display_name"]) == ("admin", "Max")
    assert await events(db, user_id) == ["role-changed", "user-renamed"]
    # The same again changes nothing, and says nothing.
    await admin.http.patch(f"{USERS}/{user_id}", json={"role": "admin"})
    assert await events(db, user_id) == ["role-changed", "user-renamed"]
    # A key never has more than its user's role: demoted, their key loses `admin`.
    async with client(app, secret) as max_:
        await admin.http.patch(f"{USERS}/{user_id}", json={"role": "member"})
        assert (await max_.get(USERS)).status_code == 403
    for bad in ({"role": "owner"}, {"disabled": "maybe"}, {"email": "x@example.com"}):
        assert (await admin.http.patch(f"{USERS}/{user_id}", json=bad)).status_code == 422
    assert (await admin.http.get(f"{USERS}/999999")).status_code == 404
    assert (await admin.http.patch(f"{USERS}/999999", json={})).status_code == 404
    assert (await admin.http.get(f"{USERS}/abc")).status_code == 422


async def test_disabling_ends_sessions_at_once_and_refuses_keys_on_the_next_request(
    app: FastAPI, db: Database, clock: FakeClock, admin: Admin
) -> None:
    user_id, secret = await member(app, db, clock, "dora@example.com")
    await new_session(db, clock, user_id)
    async with client(app, secret) as dora:
        assert (await dora.get("/api/v1/links")).status_code == 200
        disabled = await admin.http.patch(f"{USERS}/{user_id}", json={"disabled": True})
        assert disabled.json()["disabled"] is True
        assert await sessions_of(db, user_id) == 0
        refused = await dora.get("/api/v1/links")
        assert refused.status_code == 401
        assert refused.json()["detail"] == "The API key's user is disabled."
        await admin.http.patch(f"{USERS}/{user_id}", json={"disabled": False})
        assert (await dora.get("/api/v1/links")).status_code == 200
    assert await events(db, user_id) == ["user-disabled", "user-enabled"]


async def test_the_last_enabled_admin_cannot_be_demoted_or_disabled(
    app: FastAPI, db: Database, clock: FakeClock, admin: Admin
) -> None:
    me = f"{USERS}/{admin.user_id}"
    for change in ({"role": "member"}, {"disabled": True}):
        refused = await admin.http.patch(me, json=change)
        assert refused.status_code == 409, change
        assert refused.json()["type"] == "/problems/last-admin"
    # A disabled admin is no admin to fall back on.
    other = await new_user(db, clock, "off@example.com", role="admin")
    await admin.http.patch(f"{USERS}/{other}", json={"disabled": True})
    assert (await admin.http.patch(me, json={"role": "member"})).status_code == 409
    await admin.http.patch(f"{USERS}/{other}", json={"disabled": False})
    demoted = await admin.http.patch(me, json={"role": "member"})
    assert demoted.status_code == 200


async def test_two_admins_demoting_each_other_at_once_leave_one_admin(
    app: FastAPI, db: Database, clock: FakeClock, admin: Admin
) -> None:
    other = await new_user(db, clock, "two@example.com", role="admin")
    async with client(app, await new_key(db, clock, other, admin=True)) as two:
        answers = await asyncio.gather(
            admin.http.patch(f"{USERS}/{other}", json={"role": "member"}),
            two.patch(f"{USERS}/{admin.user_id}", json={"role": "member"}),
        )
    assert sorted(answer.status_code for answer in answers) in ([200, 403], [200, 409])
    async with db.read() as conn:
        admins = await conn.scalar(
            sa.select(sa.func.count()).select_from(users).where(users.c.role == "admin")
        )
    assert admins == 1


async def test_a_delete_must_say_what_happens_to_the_links(
    app: FastAPI, db: Database, clock: FakeClock, admin: Admin
) -> None:
    user_id, _ = await member(app, db, clock, "del@example.com")
    one = f"{USERS}/{user_id}"
    for query, field in [
        ("", "links"),
        ("?links=keep", "links"),
        ("?links=reassign", "to"),
        (f"?links=reassign&to={user_id}", "to"),
        ("?links=reassign&to=999999", "to"),
        (f"?links=delete&to={admin.user_id}", "to"),
    ]:
        response = await admin.http.delete(one + query)
        assert response.status_code == 422, query
        assert response.headers["content-type"] == PROBLEM
        assert [error["field"] for error in response.json()["errors"]] == [field], query
    explained = (await admin.http.delete(one)).json()["detail"]
    assert "links=reassign&to=" in explained
    assert "links=delete" in explained
    assert (await admin.http.get(one)).status_code == 200
    itself = await admin.http.delete(f"{USERS}/{admin.user_id}?links=delete")
    assert itself.status_code == 409
    assert itself.json()["type"] == "/problems/cannot-delete-self"
    assert (await admin.http.delete(f"{USERS}/999999?links=delete")).status_code == 404


async def test_deleting_a_user_can_give_their_links_to_another(
    app: FastAPI, db: Database, clock: FakeClock, admin: Admin
) -> None:
    leaving, leaving_key = await member(app, db, clock, "leaving@example.com")
    heir, heir_key = await member(app, db, clock, "heir@example.com")
    await new_session(db, clock, leaving)
    async with client(app, leaving_key) as old, client(app, heir_key) as new, client(app) as anon:
        kept = (await create(old, alias="kept-link"))["code"]
        gone = (await create(old, alias="gone-link"))["code"]
        assert (await old.delete(f"/api/v1/links/{gone}")).status_code == 204
        assert (await anon.get(f"/{kept}")).status_code == 302
        deleted = await admin.http.delete(f"{USERS}/{leaving}?links=reassign&to={heir}")
        assert deleted.status_code == 204
        assert (await anon.get(f"/{kept}")).status_code == 302
        assert (await new.get(f"/api/v1/links/{kept}")).status_code == 200
        assert [link["code"] for link in (await new.get("/api/v1/links")).json()["items"]] == [kept]
        assert (await old.get("/api/v1/links")).status_code == 401
        # The tombstone went too, and still keeps its code.
        assert (await create_status(new, alias=gone)) == 409
    assert (await admin.http.get(f"{USERS}/{leaving}")).status_code == 404
    assert await sessions_of(db, leaving) == 0
    [event] = await events(db, leaving)
    assert event == "user-deleted"
    detail = await event_detail(db, leaving)
    assert detail["links"] == "reassign"
    assert detail["to"] == heir
    assert detail["links_moved"] == 2
    assert detail["keys_deleted"] == 1


async def test_deleting_a_user_can_delete_their_links_from_every_cache(
    app: FastAPI, db: Database, clock: FakeClock, admin: Admin
) -> None:
    leaving, leaving_key = await member(app, db, clock, "bye@example.com")
    async with client(app, leaving_key) as old, client(app) as anon:
        codes = [(await create(old))["code"] for _ in range(3)]
        tombstone = (await create(old, alias="old-alias"))["code"]
        await old.delete(f"/api/v1/links/{tombstone}")
        for code in codes:
            # Each redirect read once, so every tier holds it.
            assert (await anon.get(f"/{code}")).status_code == 302
        deleted = await admin.http.delete(f"{USERS}/{leaving}?links=delete")
        assert deleted.status_code == 204
        for code in codes:
            assert (await anon.get(f"/{code}")).status_code == 404
        async with client(app, (await member(app, db, clock, "late@example.com"))[1]) as late:
            for alias in ("old-alias", codes[0]):
                assert (await create_status(late, alias=alias)) == 409
    detail = await event_detail(db, leaving)
    assert (detail["links"], detail["links_deleted"], detail["to"]) == ("delete", 3, None)


async def test_a_reset_link_is_made_for_a_user(
    db: Database, clock: FakeClock, app: FastAPI, admin: Admin
) -> None:
    user_id, _ = await member(app, db, clock, "lost@example.com")
    made = await admin.http.post(f"{USERS}/{user_id}/reset-link")
    assert made.status_code == 201
    assert made.json()["reset_url"].startswith("https://kurz.test/_/reset/")
    assert made.json()["expires_at"] == clock.iso(7 * 86_400).replace("+00:00", "Z")
    assert await events(db, user_id) == ["reset-link-made"]
    assert (await admin.http.post(f"{USERS}/999999/reset-link")).status_code == 404


async def create_status(api: httpx.AsyncClient, **body: object) -> int:
    response = await api.post("/api/v1/links", json={"url": "https://example.com/", **body})
    return response.status_code


async def event_detail(db: Database, user_id: int) -> dict[str, object]:
    async with db.read() as conn:
        text = await conn.scalar(
            sa.select(audit_events.c.detail)
            .where(audit_events.c.user_id == user_id)
            .order_by(audit_events.c.id.desc())
            .limit(1)
        )
    assert text is not None
    detail: dict[str, object] = json.loads(text)
    return detail
