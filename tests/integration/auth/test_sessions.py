"""Signing in over the API: the session cookie, its lifetimes, its end (sign-out,
everywhere, a password change, a disabled user), CSRF on every write made with it, and
the sign-in limits; embedded (SQLite) and scaled out (PostgreSQL, Redis's limiter)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from http.cookies import SimpleCookie

import httpx
import orjson
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from kurz.auth import queries as key_queries
from kurz.auth.models import ApiKeyCreate
from kurz.clock import utcnow
from kurz.config import Settings
from kurz.db import READ_COMMITTED
from kurz.db.tables import audit_events, links
from tests.conftest import Deployment, KeyMaker
from tests.integration.auth.sessions_support import (
    LINKS,
    PASSWORD,
    SESSION,
    browser,
    count,
    disable,
    make_user,
    parts_of,
    session_rows,
    sign_in,
)
from tests.support import FakeClock, running

IDLE, ABSOLUTE = 600.0, 3_600.0
PROBLEM = "application/problem+json"


@pytest.fixture
def settings(deployment: Deployment) -> Settings:
    return deployment.settings(session_idle_ttl=IDLE, session_absolute_ttl=ABSOLUTE)


@pytest.fixture
async def ann(app: FastAPI) -> int:
    return await make_user(app)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with browser(app) as c:
        yield c


def set_cookie(response: httpx.Response) -> SimpleCookie:
    cookie: SimpleCookie = SimpleCookie()
    [header] = response.headers.get_list("set-cookie")
    cookie.load(header)
    return cookie


async def events(app: FastAPI) -> list[tuple[str, int | None, dict[str, object]]]:
    async with parts_of(app).db.read() as conn:
        rows = await conn.execute(
            sa.select(audit_events.c.event, audit_events.c.user_id, audit_events.c.detail).order_by(
                audit_events.c.id
            )
        )
        return [(row.event, row.user_id, orjson.loads(row.detail)) for row in rows]


# Signing in and out.


async def test_a_sign_in_sets_the_cookie_and_a_sign_out_ends_it(
    app: FastAPI, ann: int, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    response = await client.post(SESSION, json={"email": " Ann@Example.COM ", "password": PASSWORD})
    assert response.status_code == 204
    cookie = set_cookie(response)["__Host-kurz_session"]
    assert cookie["httponly"] is True
    assert cookie["secure"] is True
    assert cookie["samesite"] == "lax"
    assert cookie["path"] == "/"
    assert cookie["max-age"] == str(int(ABSOLUTE))
    assert "domain" not in {k for k, v in cookie.items() if v}
    csrf = response.headers["x-csrf-token"]

    shown = await client.get(SESSION)
    assert shown.status_code == 200
    assert shown.json() == {
        "user": {"id": ann, "email": "ann@example.com", "display_name": "Ann", "role": "member"},
        "csrf_token": csrf,
        "expires_at": clock.iso(ABSOLUTE).replace("+00:00", "Z"),
    }
    me = (await client.get("/api/v1/me")).json()
    assert me["key"] is None
    assert me["scopes"] == ["links:read", "links:write", "stats:read", "webhooks"]

    assert (await client.delete(SESSION)).status_code == 403  # no CSRF token
    ended = await client.delete(SESSION, headers={"X-CSRF-Token": csrf})
    assert ended.status_code == 204
    assert set_cookie(ended)["__Host-kurz_session"]["max-age"] == "0"
    assert await session_rows(app) == 0
    refused = await client.get(SESSION)
    assert refused.status_code == 401
    assert refused.headers["content-type"] == PROBLEM
    assert [(e, u) for e, u, _ in await events(app)] == [("signin", ann), ("signout", ann)]


async def test_without_https_the_cookie_is_not_secure_and_has_no_host_prefix(
    deployment: Deployment, clock: FakeClock
) -> None:
    plain = deployment.settings(base_url="http://kurz.test")
    async with running(plain, clock) as app:
        await make_user(app)
        async with browser(app, base_url="http://kurz.test") as client:
            response = await client.post(
                SESSION, json={"email": "ann@example.com", "password": PASSWORD}
            )
            assert response.status_code == 204
            cookie = set_cookie(response)["kurz_session"]
            assert cookie["secure"] == ""
            assert cookie["httponly"] is True
            assert (await client.get(SESSION)).status_code == 200


async def test_no_key_and_no_cookie_is_a_401_that_names_both(client: httpx.AsyncClient) -> None:
    response = await client.get(LINKS)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "session" in response.json()["detail"]


async def test_every_failed_sign_in_gets_one_answer(app: FastAPI, ann: int) -> None:
    await make_user(app, "nopass@example.com", password=None)
    await make_user(app, "off@example.com", disabled_at=datetime(2025, 1, 1, tzinfo=UTC))
    answers = []
    async with browser(app) as client:
        for email, password in [
            ("ann@example.com", "wrong password"),
            ("nobody@example.com", PASSWORD),
            ("nopass@example.com", PASSWORD),
            ("off@example.com", PASSWORD),
            ("not an email", PASSWORD),
        ]:
            response = await client.post(SESSION, json={"email": email, "password": password})
            assert response.status_code == 401
            assert "set-cookie" not in response.headers
            answers.append(response.json())
    assert all(answer == answers[0] for answer in answers)
    assert answers[0]["type"] == "/problems/sign-in-failed"
    failed = [(e, d) for e, _, d in await events(app) if e == "signin-failed"]
    assert [d["email"] for _, d in failed][:2] == ["ann@example.com", "nobody@example.com"]


async def test_a_long_email_is_kept_short_in_the_audit_log(app: FastAPI) -> None:
    async with browser(app) as client:
        email = "x" * 300 + "@example.com"
        response = await client.post(SESSION, json={"email": email, "password": PASSWORD})
        assert response.status_code == 401
    [(_, _, detail)] = await events(app)
    assert detail == {"email": "x" * 100}


@pytest.mark.parametrize(
    "body",
    [{}, {"email": "ann@example.com"}, {"email": 1, "password": "x"}, {"password": "x" * 2000}],
)
async def test_a_malformed_sign_in_is_a_422(client: httpx.AsyncClient, body: object) -> None:
    response = await client.post(SESSION, json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM


async def test_the_session_routes_are_for_sessions_only(make_key: KeyMaker, app: FastAPI) -> None:
    secret = await make_key("script")
    async with browser(app) as client:
        client.headers["Authorization"] = f"Bearer {secret}"
        for method in ("GET", "DELETE"):
            response = await client.request(method, SESSION)
            assert response.status_code == 400
            assert response.json()["type"] == "/problems/not-a-session"
        me = (await client.get("/api/v1/me")).json()
        assert me["key"] is not None
        assert me["email"].endswith("@keys.invalid")


# Rotation and lifetimes.


async def test_a_new_sign_in_rotates_the_session(
    app: FastAPI, ann: int, client: httpx.AsyncClient
) -> None:
    client.cookies.set("__Host-kurz_session", "planted-by-someone-else", domain="kurz.test")
    first_token = await sign_in(client)
    first = client.cookies["__Host-kurz_session"]
    assert first != "planted-by-someone-else"
    second_token = await sign_in(client)
    second = client.cookies["__Host-kurz_session"]
    assert (second, second_token) != (first, first_token)
    assert await session_rows(app) == 1
    async with browser(app) as stale:
        stale.cookies.set("__Host-kurz_session", first)
        assert (await stale.get(SESSION)).status_code == 401
    assert (await client.get(SESSION)).status_code == 200


async def test_an_idle_session_ends(
    app: FastAPI, ann: int, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await sign_in(client)
    for _ in range(3):
        clock.advance(IDLE - 1)  # each request keeps it alive for another IDLE
        assert (await client.get(LINKS)).status_code == 200
    clock.advance(IDLE)
    assert (await client.get(LINKS)).status_code == 401
    assert await session_rows(app) == 0  # deleted on the refused request


async def test_a_session_ends_at_its_absolute_lifetime_however_active(
    app: FastAPI, ann: int, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await sign_in(client)
    for _ in range(7):  # every 500 s: never idle
        clock.advance(500)
        assert (await client.get(LINKS)).status_code == 200
    clock.advance(ABSOLUTE - 7 * 500)
    assert (await client.get(LINKS)).status_code == 401
    assert await session_rows(app) == 0


async def test_requests_note_when_the_user_was_last_seen_at_most_once_a_minute(
    app: FastAPI, ann: int, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await sign_in(client)
    signed_in_at = utcnow(clock)

    async def last_seen() -> datetime | None:
        user = await parts_of(app).sessions.user(ann)
        assert user is not None
        return user.last_seen_at

    assert await last_seen() == signed_in_at
    clock.advance(59)
    assert (await client.get(LINKS)).status_code == 200
    assert await last_seen() == signed_in_at
    clock.advance(1)
    assert (await client.get(LINKS)).status_code == 200
    assert await last_seen() == utcnow(clock)


# Ending sessions.


async def test_signing_out_everywhere_ends_every_session_of_the_user(
    app: FastAPI, ann: int, make_key: KeyMaker
) -> None:
    await make_user(app, "bob@example.com")
    async with browser(app) as laptop, browser(app) as phone, browser(app) as bob:
        csrf = await sign_in(laptop)
        await sign_in(phone)
        await sign_in(bob, "bob@example.com")
        ended = await laptop.delete("/api/v1/me/sessions", headers={"X-CSRF-Token": csrf})
        assert ended.status_code == 204
        assert set_cookie(ended)["__Host-kurz_session"]["max-age"] == "0"
        for client in (laptop, phone):
            assert (await client.get(LINKS)).status_code == 401
        assert (await bob.get(LINKS)).status_code == 200
    assert ("signout-everywhere", ann, {"sessions": 2}) in await events(app)


async def test_a_password_change_ends_the_sessions_from_before_it(app: FastAPI, ann: int) -> None:
    new = "a much better passphrase"
    async with browser(app) as laptop, browser(app) as phone:
        old_csrf = await sign_in(laptop)
        await sign_in(phone)
        old_cookie = laptop.cookies["__Host-kurz_session"]
        body = {"current_password": PASSWORD, "new_password": new}
        changed = await laptop.put(
            "/api/v1/me/password", json=body, headers={"X-CSRF-Token": old_csrf}
        )
        assert changed.status_code == 204
        new_csrf = changed.headers["x-csrf-token"]
        assert new_csrf != old_csrf
        assert laptop.cookies["__Host-kurz_session"] != old_cookie
        # The other browser's session, and this one's old cookie, are from before.
        assert (await phone.get(LINKS)).status_code == 401
        async with browser(app) as stale:
            stale.cookies.set("__Host-kurz_session", old_cookie)
            assert (await stale.get(LINKS)).status_code == 401
        # The browser that changed it goes on, with its new token only.
        link = {"url": "https://example.com/"}
        assert (
            await laptop.post(LINKS, json=link, headers={"X-CSRF-Token": old_csrf})
        ).status_code == 403
        assert (
            await laptop.post(LINKS, json=link, headers={"X-CSRF-Token": new_csrf})
        ).status_code == 201
    async with browser(app) as again:
        failed = await again.post(SESSION, json={"email": "ann@example.com", "password": PASSWORD})
        assert failed.status_code == 401
        await sign_in(again, password=new)
    assert ("password-changed", ann, {}) in await events(app)


async def test_a_password_change_checks_both_passwords(app: FastAPI, ann: int) -> None:
    async with browser(app) as client:
        csrf = {"X-CSRF-Token": await sign_in(client)}
        wrong = {"current_password": "not it", "new_password": "a much better passphrase"}
        response = await client.put("/api/v1/me/password", json=wrong, headers=csrf)
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "current_password"
        short = {"current_password": PASSWORD, "new_password": "short"}
        response = await client.put("/api/v1/me/password", json=short, headers=csrf)
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "new_password"
        assert (await client.get(LINKS)).status_code == 200  # nothing ended


async def test_a_password_change_with_a_key_ends_every_session_and_sets_no_cookie(
    app: FastAPI, ann: int
) -> None:
    # Keys for a user over the API are another part's (POST /api/v1/keys).
    parts = parts_of(app)
    async with parts.db.write(READ_COMMITTED) as conn:
        created = await key_queries.create(
            conn=conn, key_in=ApiKeyCreate(name="script"), now=utcnow(parts.clock), user_id=ann
        )
    async with browser(app) as script, browser(app) as web:
        await sign_in(web)
        script.headers["Authorization"] = f"Bearer {created.secret}"
        body = {"current_password": PASSWORD, "new_password": "a much better passphrase"}
        changed = await script.put("/api/v1/me/password", json=body)
        assert changed.status_code == 204
        assert "set-cookie" not in changed.headers
        assert (await web.get(LINKS)).status_code == 401
        assert (await script.get(LINKS)).status_code == 200
        ended = await script.delete("/api/v1/me/sessions")
        assert ended.status_code == 204
        assert "set-cookie" not in ended.headers


async def test_a_disabled_users_session_is_refused(
    app: FastAPI, ann: int, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    await sign_in(client)
    assert (await client.get(LINKS)).status_code == 200
    await disable(app, ann, at=utcnow(clock))
    assert (await client.get(LINKS)).status_code == 401
    assert await session_rows(app) == 0


# CSRF.


@pytest.mark.parametrize("token", ["missing", "stale", "other-session"])
async def test_a_json_write_without_the_sessions_csrf_token_is_refused_and_writes_nothing(
    app: FastAPI, ann: int, client: httpx.AsyncClient, token: str
) -> None:
    stale = await sign_in(client)
    current = await sign_in(client)  # rotated: the first token is stale
    assert stale != current
    headers = {}
    if token == "stale":
        headers["X-CSRF-Token"] = stale
    elif token == "other-session":
        await make_user(app, "bob@example.com")
        async with browser(app) as bob:
            headers["X-CSRF-Token"] = await sign_in(bob, "bob@example.com")
    response = await client.post(LINKS, json={"url": "https://example.com/"}, headers=headers)
    assert response.status_code == 403
    assert response.json()["type"] == "/problems/csrf-failed"
    assert await count(app, links) == 0
    made = await client.post(
        LINKS, json={"url": "https://example.com/"}, headers={"X-CSRF-Token": current}
    )
    assert made.status_code == 201
    assert await count(app, links) == 1


@pytest.mark.parametrize("multipart", [False, True])
async def test_a_form_post_without_the_sessions_csrf_token_is_refused_and_writes_nothing(
    app: FastAPI, ann: int, client: httpx.AsyncClient, multipart: bool
) -> None:
    stale = await sign_in(client)
    current = await sign_in(client)

    async def post(fields: dict[str, str]) -> httpx.Response:
        if multipart:
            files = {name: (None, value) for name, value in fields.items()}
            return await client.post(LINKS, files=files)
        return await client.post(LINKS, data=fields)

    for fields in ({"url": "https://example.com/"}, {"url": "https://e.com/", "csrf_token": stale}):
        response = await post(fields)
        assert response.status_code == 403, response.text
        assert response.json()["type"] == "/problems/csrf-failed"
    assert await count(app, links) == 0
    # The right token passes the CSRF check; the links API itself reads JSON only.
    passed = await post({"url": "https://example.com/", "csrf_token": current})
    assert passed.status_code == 422
    assert await count(app, links) == 0


async def test_every_write_by_session_needs_the_token_and_no_read_does(
    app: FastAPI, ann: int, client: httpx.AsyncClient
) -> None:
    csrf = {"X-CSRF-Token": await sign_in(client)}
    made = await client.post(LINKS, json={"url": "https://example.com/"}, headers=csrf)
    code = made.json()["code"]
    one = f"{LINKS}/{code}"
    assert (await client.get(one)).status_code == 200
    assert (await client.get(LINKS)).status_code == 200
    assert (await client.get(f"{one}/stats")).status_code == 200
    patch = {"If-Match": "*"}
    assert (await client.patch(one, json={"tags": ["x"]}, headers=patch)).status_code == 403
    assert (await client.delete(one)).status_code == 403
    assert (await client.put("/api/v1/me/password", json={})).status_code == 403
    assert (await client.delete("/api/v1/me/sessions")).status_code == 403
    assert (await client.patch(one, json={"tags": ["x"]}, headers=patch | csrf)).status_code == 200
    assert (await client.delete(one, headers=csrf)).status_code == 204


async def test_a_key_needs_no_csrf_token_even_beside_a_cookie(
    app: FastAPI, ann: int, client: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    await sign_in(client)
    secret = await make_key("script")
    response = await client.post(
        LINKS, json={"url": "https://example.com/"}, headers={"Authorization": f"Bearer {secret}"}
    )
    assert response.status_code == 201


async def test_a_link_is_read_with_a_session_as_with_a_key(
    app: FastAPI, ann: int, client: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    csrf = await sign_in(client)
    made = await client.post(
        LINKS, json={"url": "https://example.com/"}, headers={"X-CSRF-Token": csrf}
    )
    code = made.json()["code"]
    shown = await client.get(f"{LINKS}/{code}")
    assert shown.status_code == 200
    assert shown.json()["code"] == code
    # Another user's session sees nothing of it.
    await make_user(app, "bob@example.com")
    async with browser(app) as bob:
        await sign_in(bob, "bob@example.com")
        assert (await bob.get(f"{LINKS}/{code}")).status_code == 404


# Hash work and limits.


async def test_every_failed_sign_in_costs_the_hash_work_of_a_wrong_password(
    app: FastAPI, ann: int
) -> None:
    await make_user(app, "nopass@example.com", password=None)
    await make_user(app, "off@example.com", disabled_at=datetime(2025, 1, 1, tzinfo=UTC))
    passwords = parts_of(app).passwords
    work = {}
    async with browser(app) as client:
        for case, email, password in [
            ("wrong password", "ann@example.com", "not the password"),
            ("unknown email", "nobody@example.com", PASSWORD),
            ("no password", "nopass@example.com", PASSWORD),
            ("disabled", "off@example.com", PASSWORD),
            ("malformed email", "ann at example", PASSWORD),
            ("right password", "ann@example.com", PASSWORD),
        ]:
            before = passwords.work
            await client.post(SESSION, json={"email": email, "password": password})
            work[case] = passwords.work - before
    assert work == dict.fromkeys(work, 1)


@pytest.fixture
def limited(deployment: Deployment) -> Settings:
    return deployment.settings(
        ratelimit_signin_ip="3/600s;burst=3", ratelimit_signin_account="2/600s;burst=2"
    )


async def test_failed_sign_ins_are_limited_per_ip_and_successes_spend_nothing(
    limited: Settings, clock: FakeClock
) -> None:
    async with running(limited, clock) as app:
        for name in ("ann", "bob", "cat", "dan"):
            await make_user(app, f"{name}@example.com")
        passwords = parts_of(app).passwords
        async with browser(app, ip="10.0.0.1") as client, browser(app, ip="10.0.0.2") as other:
            for _ in range(5):  # more than the budget of failures
                await sign_in(client, "ann@example.com")
            for name in ("ann", "bob", "cat"):
                response = await client.post(
                    SESSION, json={"email": f"{name}@example.com", "password": "wrong"}
                )
                assert response.status_code == 401
            before = passwords.work
            blocked = await client.post(
                SESSION, json={"email": "dan@example.com", "password": PASSWORD}
            )
            assert blocked.status_code == 429
            assert blocked.json()["type"] == "/problems/rate-limit/signin-ip"
            assert int(blocked.headers["retry-after"]) == 200
            assert passwords.work == before  # refused without hashing
            await sign_in(other, "dan@example.com")  # another IP is not limited
            clock.advance(200)
            await sign_in(client, "dan@example.com")


async def test_failed_sign_ins_are_limited_per_account(limited: Settings, clock: FakeClock) -> None:
    async with running(limited, clock) as app:
        await make_user(app, "ann@example.com")
        await make_user(app, "bob@example.com")
        for ip in ("10.0.0.1", "10.0.0.2"):
            async with browser(app, ip=ip) as client:
                response = await client.post(
                    SESSION, json={"email": "ANN@example.com", "password": "wrong"}
                )
                assert response.status_code == 401
        async with browser(app, ip="10.0.0.3") as client:
            blocked = await client.post(
                SESSION, json={"email": "ann@example.com", "password": PASSWORD}
            )
            assert blocked.status_code == 429
            assert blocked.json()["type"] == "/problems/rate-limit/signin-account"
            await sign_in(client, "bob@example.com")
            clock.advance(300)
            await sign_in(client, "ann@example.com")


async def test_a_wrong_current_password_counts_as_a_failed_sign_in(
    limited: Settings, clock: FakeClock
) -> None:
    async with running(limited, clock) as app:
        await make_user(app, "ann@example.com")
        async with browser(app) as client:
            csrf = {"X-CSRF-Token": await sign_in(client)}
            wrong = {"current_password": "wrong", "new_password": "a much better passphrase"}
            for status in (422, 422, 429):
                response = await client.put("/api/v1/me/password", json=wrong, headers=csrf)
                assert response.status_code == status
            blocked = await client.post(
                SESSION, json={"email": "ann@example.com", "password": PASSWORD}
            )
            assert blocked.status_code == 429


async def test_the_api_limit_counts_per_user_across_their_sessions(
    deployment: Deployment, clock: FakeClock
) -> None:
    async with running(deployment.settings(ratelimit_api="3/60s;burst=3"), clock) as app:
        await make_user(app)
        async with browser(app) as laptop, browser(app) as phone:
            await sign_in(laptop)
            await sign_in(phone)
            statuses = [(await c.get(LINKS)).status_code for c in (laptop, phone, laptop, phone)]
            assert statuses == [200, 200, 200, 429]
