"""The audit log's reading side (GET /api/v1/audit) and its retention, on SQLite and
PostgreSQL: admins only, newest first by keyset, filtered, purged after the retention."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from kurz.accounts import audit
from kurz.accounts.audit_log import AuditLog
from kurz.auth import queries as key_queries
from kurz.auth.models import ApiKeyCreate, ApiKeyCreated, scopes_for
from kurz.clock import utcnow
from kurz.db import READ_COMMITTED, Database
from tests.support import FakeClock

AUDIT = "/api/v1/audit"
PROBLEM = "application/problem+json"
DAY = 86_400.0


async def new_key(db: Database, clock: FakeClock, name: str, *, admin: bool) -> ApiKeyCreated:
    async with db.write(READ_COMMITTED) as conn:
        return await key_queries.create(
            conn=conn,
            key_in=ApiKeyCreate(name=name, scopes=scopes_for(admin=admin)),
            now=utcnow(clock),
        )


async def log(db: Database, clock: FakeClock, event: str, **fields: Any) -> None:
    """An event recorded now; the clock then moves a second on."""
    async with db.write(READ_COMMITTED) as conn:
        await audit.record(conn, event=event, at=utcnow(clock), **fields)
    clock.advance(1)


@pytest.fixture
async def admin_key(db: Database, clock: FakeClock) -> ApiKeyCreated:
    return await new_key(db, clock, "ops", admin=True)


@pytest.fixture
async def admin(
    admin_key: ApiKeyCreated, client_for: Callable[[str], httpx.AsyncClient]
) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(admin_key.secret) as client:
        yield client


async def read(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get(AUDIT, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_an_admin_reads_the_events_newest_first_a_page_at_a_time(
    db: Database, clock: FakeClock, admin: httpx.AsyncClient, admin_key: ApiKeyCreated
) -> None:
    member = await new_key(db, clock, "bob", admin=False)
    made_by = {"actor_user_id": admin_key.user, "actor_key_id": admin_key.id}
    await log(db, clock, "key-created", **made_by, user_id=member.user, ip="192.0.2.7",
              detail={"key": member.id, "name": "bob"})  # fmt: skip
    for _ in range(3):
        await log(db, clock, "signin-failed", ip="198.51.100.1", detail={"email": "x@e.com"})
    await log(db, clock, "key-revoked", actor_user_id=member.user, user_id=member.user)

    pages, cursor = [], None
    while True:
        body = await read(admin, limit=2, **({"cursor": cursor} if cursor else {}))
        pages.append([item["event"] for item in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert len(pages) < 5, pages
    assert pages == [
        ["key-revoked", "signin-failed"],
        ["signin-failed", "signin-failed"],
        ["key-created"],
    ]
    everything = (await read(admin))["items"]
    ids = [item["id"] for item in everything]
    assert ids == sorted(ids, reverse=True)
    made = everything[-1]
    assert set(made) == {"id", "at", "event", "actor", "user", "ip", "detail"}
    assert made["actor"] == {
        "user": {"id": admin_key.user, "email": f"key-{admin_key.id}@keys.invalid"},
        "key": admin_key.id,
    }
    assert made["user"] == {"id": member.user, "email": f"key-{member.id}@keys.invalid"}
    assert made["ip"] == "192.0.2.7"
    assert made["detail"] == {"key": member.id, "name": "bob"}
    assert made["at"].startswith(clock.iso(-5)[:19])
    failed = everything[1]
    assert failed["actor"] == {"user": None, "key": None}
    assert failed["user"] is None


async def test_a_deleted_user_is_named_by_id_only(
    db: Database, clock: FakeClock, admin: httpx.AsyncClient
) -> None:
    await log(db, clock, "user-deleted", actor_user_id=987_654, actor_key_id=55, user_id=987_655)
    [entry] = (await read(admin))["items"]
    assert entry["actor"] == {"user": {"id": 987_654, "email": None}, "key": 55}
    assert entry["user"] == {"id": 987_655, "email": None}


async def test_filters_by_event_user_and_time(
    db: Database, clock: FakeClock, admin: httpx.AsyncClient
) -> None:
    start = clock.iso()
    await log(db, clock, "signin", actor_user_id=7, user_id=7)
    await log(db, clock, "role-changed", actor_user_id=1, user_id=7)
    await log(db, clock, "role-changed", actor_user_id=1, user_id=8)
    middle = clock.iso()
    await log(db, clock, "key-created", actor_user_id=8, user_id=8)
    await log(db, clock, "signin-failed")

    def events(body: dict[str, Any]) -> list[tuple[str, int | None]]:
        return [(item["event"], item["user"] and item["user"]["id"]) for item in body["items"]]

    both = await admin.get(AUDIT, params=[("event", "signin"), ("event", "key-created")])
    assert events(both.json()) == [("key-created", 8), ("signin", 7)]
    # Done to user 7, or by user 1 to someone else: subject or actor.
    assert events(await read(admin, user=7)) == [("role-changed", 7), ("signin", 7)]
    assert events(await read(admin, user=1)) == [("role-changed", 8), ("role-changed", 7)]
    assert events(await read(admin, since=middle)) == [("signin-failed", None), ("key-created", 8)]
    assert events(await read(admin, since=start, until=middle)) == [
        ("role-changed", 8), ("role-changed", 7), ("signin", 7)
    ]  # fmt: skip
    # Filters and pages combine: the cursor keeps the filter's place.
    first = await read(admin, event="role-changed", limit=1)
    assert events(first) == [("role-changed", 8)]
    second = await read(admin, event="role-changed", limit=1, cursor=first["next_cursor"])
    assert events(second) == [("role-changed", 7)]
    assert second["next_cursor"] is None


async def test_only_an_admin_reads_it(
    admin: httpx.AsyncClient,
    anon: httpx.AsyncClient,
    db: Database,
    clock: FakeClock,
    client_for: Callable[[str], httpx.AsyncClient],
) -> None:
    await log(db, clock, "signin", actor_user_id=1, user_id=1)
    member = await new_key(db, clock, "bob", admin=False)
    async with client_for(member.secret) as bob:
        refused = await bob.get(AUDIT)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == PROBLEM
    assert refused.json()["type"] == "/problems/insufficient-scope"
    nobody = await anon.get(AUDIT)
    assert nobody.status_code == 401
    assert nobody.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"cursor": "nonsense"}, "cursor"),
        ({"event": "signed-in"}, "event"),
        ({"user": 0}, "user"),
        ({"user": 2**63}, "user"),
        ({"user": "me"}, "user"),
        ({"since": "2026-01-01T00:00:00"}, "since"),
        ({"until": "yesterday"}, "until"),
        ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until"),
    ],
    ids=["limit-0", "limit-201", "cursor", "event", "user-0", "user-huge", "user-text",
         "naive-since", "until-text", "reversed"],
)  # fmt: skip
async def test_bad_parameters_are_422_problems(
    admin: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    response = await admin.get(AUDIT, params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == "/problems/validation-error"
    assert [(error["field"], error["in"]) for error in body["errors"]] == [(field, "query")]


async def test_an_unknown_event_is_refused_naming_the_known_ones(admin: httpx.AsyncClient) -> None:
    response = await admin.get(AUDIT, params=[("event", "signin"), ("event", "nope")])
    assert response.status_code == 422
    message = response.json()["errors"][0]["message"]
    assert message.startswith("nope is not an audit event; one of ")
    assert "key-created" in message


async def test_the_purge_forgets_events_past_the_retention_in_batches(
    db: Database, clock: FakeClock
) -> None:
    log_ = AuditLog(db=db, clock=clock, retention=10 * DAY)
    for _ in range(5):
        await log(db, clock, "signin", actor_user_id=1, user_id=1)
    clock.advance(5 * DAY)
    await log(db, clock, "signout", actor_user_id=1, user_id=1)
    assert await log_.purge(batch=2) == 0
    clock.advance(5 * DAY)
    # The five sign-ins are ten days old now, in three batches of at most two.
    assert await log_.purge(batch=2) == 5
    assert [entry.event for entry in (await log_.page(limit=10)).items] == ["signout"]
    assert await log_.purge(batch=2) == 0
    clock.advance(5 * DAY)
    assert await log_.purge() == 1
    assert (await log_.page(limit=10)).items == []


async def test_the_purge_runs_hourly_as_a_job_with_the_configured_retention(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    parts = app.state.kurz
    schedule = parts.registry.schedules["purge-audit-events"]
    assert (schedule.kind, schedule.schedule.seconds) == ("purge-audit-events", 3_600.0)
    assert parts.audit.retention == parts.settings.audit_retention == 180 * DAY
    await log(db, clock, "signin", actor_user_id=1, user_id=1)
    clock.advance(180 * DAY)
    await log(db, clock, "signout", actor_user_id=1, user_id=1)
    await parts.registry.kinds["purge-audit-events"].handler({})
    assert [entry.event for entry in (await parts.audit.page(limit=10)).items] == ["signout"]
