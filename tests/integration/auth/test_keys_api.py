"""/api/v1/keys: a user makes, lists and revokes their own keys, an admin everyone's;
a key never has more than its user, nor a key made through a key more than that key.
Embedded (SQLite) and scaled out (PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from kurz.config import Settings
from kurz.db import READ_COMMITTED, Database
from kurz.db.tables import users
from tests.conftest import Deployment
from tests.integration.auth.support import admin, audit_log, member
from tests.support import FakeClock

KEYS = "/api/v1/keys"
Clients = Callable[[str], httpx.AsyncClient]


@pytest.fixture
def settings(deployment: Deployment) -> Settings:
    return deployment.settings()


def problem_type(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/problem+json", response.text
    kind: str = response.json()["type"]
    return kind


async def made(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post(KEYS, json={"name": "made", **body})
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    assert response.headers["location"] == f"{KEYS}/{data['id']}"
    return data


async def test_a_member_makes_lists_and_revokes_their_own_keys(
    db: Database, clock: FakeClock, client_for: Clients
) -> None:
    alice = await member(db, clock, "alice@example.com")
    async with client_for(alice.secret) as api:
        created = await made(api, name="reader", scopes=["links:read"])
        assert created["user"] == alice.user_id
        assert created["scopes"] == ["links:read"]
        assert created["secret"].startswith("kurz_")
        async with client_for(created["secret"]) as reader:
            assert (await reader.get("/api/v1/links")).status_code == 200
            refused = await reader.post("/api/v1/links", json={"url": "https://e.com/"})
            assert refused.status_code == 403
            assert problem_type(refused) == "/problems/insufficient-scope"

            listed = (await api.get(KEYS)).json()["items"]
            assert [key["id"] for key in listed] == [alice.key_id, created["id"]]
            assert all("secret" not in key for key in listed)
            one = (await api.get(f"{KEYS}/{created['id']}")).json()
            assert one["name"] == "reader"
            assert "secret" not in one

            for _ in range(2):
                assert (await api.delete(f"{KEYS}/{created['id']}")).status_code == 204
            assert (await reader.get("/api/v1/links")).status_code == 401
    events = [
        (e["event"], e["actor_user_id"], e["actor_key_id"], e["user_id"])
        for e in await audit_log(db)
    ]
    # Revoked twice, logged once.
    assert events == [
        ("key-created", alice.user_id, alice.key_id, alice.user_id),
        ("key-revoked", alice.user_id, alice.key_id, alice.user_id),
    ]
    [created_event, _] = await audit_log(db)
    assert created_event["detail"] == {
        "key": created["id"],
        "name": "reader",
        "scopes": ["links:read"],
    }


async def test_a_member_cannot_see_revoke_or_make_another_members_keys(
    db: Database, clock: FakeClock, client_for: Clients
) -> None:
    alice = await member(db, clock, "alice@example.com")
    bob = await member(db, clock, "bob@example.com")
    async with client_for(alice.secret) as api, client_for(bob.secret) as bobs:
        assert [key["id"] for key in (await api.get(KEYS)).json()["items"]] == [alice.key_id]
        for response in (
            await api.get(KEYS, params={"user": bob.user_id}),
            await api.post(KEYS, json={"name": "x", "user": bob.user_id}),
        ):
            assert response.status_code == 404
            assert problem_type(response) == "/problems/user-not-found"
        # Alike whether the user exists or not: nothing is learnt of Bob.
        nobody = await api.get(KEYS, params={"user": 10_000})
        assert (nobody.status_code, nobody.json()["detail"]) == (
            404,
            "No user 10000, or not one the caller manages.",
        )
        for response in (
            await api.get(f"{KEYS}/{bob.key_id}"),
            await api.delete(f"{KEYS}/{bob.key_id}"),
            await api.delete(f"{KEYS}/999999"),
            await api.delete(f"{KEYS}/x1"),
            await api.delete(f"{KEYS}/99999999999999999999999"),
        ):
            assert response.status_code == 404
            assert problem_type(response) == "/problems/not-found"
        assert (await bobs.get("/api/v1/links")).status_code == 200
    assert await audit_log(db) == []


async def test_an_admin_manages_everyones_keys_within_their_roles(
    db: Database, clock: FakeClock, client_for: Clients
) -> None:
    root = await admin(db, clock, "root@example.com")
    alice = await member(db, clock, "alice@example.com")
    bob = await member(db, clock, "bob@example.com")
    async with client_for(root.secret) as api, client_for(alice.secret) as alices:
        everyone = [key["id"] for key in (await api.get(KEYS)).json()["items"]]
        assert everyone == [root.key_id, alice.key_id, bob.key_id]
        only_bob = (await api.get(KEYS, params={"user": bob.user_id})).json()["items"]
        assert [key["id"] for key in only_bob] == [bob.key_id]
        missing = await api.get(KEYS, params={"user": 10_000})
        assert (missing.status_code, problem_type(missing)) == (404, "/problems/user-not-found")

        for_bob = await made(api, name="bob's ci", user=bob.user_id, scopes=["links:read"])
        assert for_bob["user"] == bob.user_id
        beyond = await api.post(
            KEYS, json={"name": "x", "user": bob.user_id, "scopes": ["links:read", "proxy"]}
        )
        assert beyond.status_code == 403
        assert problem_type(beyond) == "/problems/scope-exceeds-role"
        assert beyond.json()["scopes"] == ["proxy"]

        assert (await api.delete(f"{KEYS}/{alice.key_id}")).status_code == 204
        assert (await alices.get("/api/v1/links")).status_code == 401
    [made_event, revoked] = await audit_log(db)
    assert (made_event["event"], made_event["actor_user_id"], made_event["user_id"]) == (
        "key-created",
        root.user_id,
        bob.user_id,
    )
    assert (revoked["event"], revoked["actor_user_id"], revoked["user_id"]) == (
        "key-revoked",
        root.user_id,
        alice.user_id,
    )


async def test_a_member_cannot_make_a_proxy_or_metrics_key(
    db: Database, clock: FakeClock, client_for: Clients
) -> None:
    alice = await member(db, clock, "alice@example.com")
    async with client_for(alice.secret) as api:
        for scopes, beyond in [
            (["proxy"], ["proxy"]),
            (["links:read", "metrics:read"], ["metrics:read"]),
            (["admin", "proxy", "metrics:read"], ["metrics:read", "proxy", "admin"]),
        ]:
            refused = await api.post(KEYS, json={"name": "x", "scopes": scopes})
            assert refused.status_code == 403
            assert problem_type(refused) == "/problems/scope-exceeds-role"
            assert refused.json()["scopes"] == beyond
        assert len((await api.get(KEYS)).json()["items"]) == 1
    assert await audit_log(db) == []


async def test_a_key_makes_and_revokes_only_keys_within_its_own_scopes(
    db: Database, clock: FakeClock, client_for: Clients
) -> None:
    alice = await member(db, clock, "alice@example.com", "links:read")
    async with client_for(alice.secret) as reader:
        refused = await reader.post(
            KEYS, json={"name": "w", "scopes": ["links:read", "links:write"]}
        )
        assert refused.status_code == 403
        assert problem_type(refused) == "/problems/scope-exceeds-key"
        assert refused.json()["scopes"] == ["links:write"]
        # The default scopes are a member's, more than this key has.
        assert (await reader.post(KEYS, json={"name": "w"})).status_code == 403
        same = await made(reader, name="another reader", scopes=["links:read"])
        assert same["scopes"] == ["links:read"]

    root = await admin(db, clock, "root@example.com")
    async with client_for(root.secret) as api:
        writer = await made(api, name="writer", user=alice.user_id)
    async with client_for(alice.secret) as reader:
        refused = await reader.delete(f"{KEYS}/{writer['id']}")
        assert (refused.status_code, problem_type(refused)) == (403, "/problems/scope-exceeds-key")
        assert (await reader.delete(f"{KEYS}/{same['id']}")).status_code == 204
        # A key may always revoke itself.
        assert (await reader.delete(f"{KEYS}/{alice.key_id}")).status_code == 204
        assert (await reader.get(KEYS)).status_code == 401


async def test_a_key_expires_when_it_says_and_cannot_be_made_expired(
    db: Database, clock: FakeClock, client_for: Clients
) -> None:
    alice = await member(db, clock, "alice@example.com")
    async with client_for(alice.secret) as api:
        for when in (clock.iso(-1), clock.iso(0)):
            past = await api.post(KEYS, json={"name": "x", "expires_at": when})
            assert past.status_code == 422
            assert past.json()["errors"][0]["field"] == "expires_at"
        naive = await api.post(KEYS, json={"name": "x", "expires_at": "2030-01-01T00:00:00"})
        assert naive.status_code == 422
        soon = await made(api, name="soon", expires_at=clock.iso(60))
        async with client_for(soon["secret"]) as expiring:
            assert (await expiring.get("/api/v1/links")).status_code == 200
            clock.advance(60)
            gone = await expiring.get("/api/v1/links")
            assert gone.status_code == 401
            assert gone.json()["detail"] == "The API key has expired."
            assert gone.headers["www-authenticate"] == "Bearer"


async def test_a_key_is_never_more_than_its_user(
    db: Database, clock: FakeClock, client_for: Clients
) -> None:
    root = await admin(db, clock, "root@example.com")
    alice = await member(db, clock, "alice@example.com")
    async with client_for(root.secret) as api:
        assert (await api.get("/metrics")).status_code == 200
        assert (await api.get(f"{KEYS}/{alice.key_id}")).status_code == 200
        async with db.write(READ_COMMITTED) as conn:
            await conn.execute(
                sa.update(users).where(users.c.id == root.user_id).values(role="member")
            )
        # At once: the key's scopes are cut to its user's role on every call.
        refused = await api.get("/metrics")
        assert (refused.status_code, problem_type(refused)) == (403, "/problems/insufficient-scope")
        assert refused.json()["required_scope"] == "metrics:read"
        assert (await api.get(f"{KEYS}/{alice.key_id}")).status_code == 404
        assert [key["id"] for key in (await api.get(KEYS)).json()["items"]] == [root.key_id]
        beyond = await api.post(KEYS, json={"name": "x", "scopes": ["admin"]})
        assert (beyond.status_code, problem_type(beyond)) == (403, "/problems/scope-exceeds-role")
