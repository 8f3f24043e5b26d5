"""The migrations build exactly the schema kurz.db.tables declares, on both backends."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from kurz.auth import queries as key_queries
from kurz.auth.models import ApiKeyCreate, Scope, parse_scopes, scopes_for
from kurz.clock import utcnow
from kurz.db import (
    READ_COMMITTED,
    Database,
    DatabaseUnavailable,
    SchemaNotReady,
    ensure_schema,
    upgrade,
)
from kurz.db.migrate import SchemaState, declared, downgrade, schema_state
from kurz.db.tables import metadata
from kurz.errors import Problem
from kurz.idempotency import Idempotency, Keyed, ReplayedProblem
from kurz.links.models import LinkRead
from tests.conftest import BASE_URL, app_settings
from tests.support import FakeClock, running


def _diff(sync_conn: Connection) -> list[Any]:
    context = MigrationContext.configure(
        sync_conn, opts={"compare_type": True, "include_name": declared}
    )
    return list(compare_metadata(context, metadata))


async def test_migrated_schema_matches_the_tables(database_url: str) -> None:
    db = Database.from_url(database_url)
    try:
        assert await schema_state(db) is SchemaState.CURRENT
        async with db.read() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await db.dispose()


async def test_empty_postgres_is_refused_until_migrated(empty_postgres_url: str) -> None:
    db = Database.from_url(empty_postgres_url)
    try:
        with pytest.raises(SchemaNotReady, match="kurz migrate"):
            await ensure_schema(db)
        await upgrade(db)
        await ensure_schema(db)
        assert await schema_state(db) is SchemaState.CURRENT
    finally:
        await db.dispose()


async def test_outdated_postgres_is_refused(empty_postgres_url: str) -> None:
    db = Database.from_url(empty_postgres_url)
    try:
        await upgrade(db)
        async with db.write(READ_COMMITTED) as conn:
            await conn.exec_driver_sql("UPDATE alembic_version SET version_num = 'ffff'")
        with pytest.raises(SchemaNotReady, match="newer kurz"):
            await ensure_schema(db)
    finally:
        await db.dispose()


async def test_a_new_sqlite_file_is_created_and_migrated(tmp_path: Path) -> None:
    path = tmp_path / "kurz.db"
    db = Database.from_url(f"sqlite:///{path}")
    try:
        await ensure_schema(db)
        assert path.exists()
        assert await schema_state(db) is SchemaState.CURRENT
        async with db.read() as conn:
            mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar_one()
        assert mode == "wal"
    finally:
        await db.dispose()


async def test_no_directory_is_made_for_a_new_sqlite_file(tmp_path: Path) -> None:
    # A missing directory is the CLI's to make or refuse (kurz.cli_settings): the
    # engine follows no typo.
    path = tmp_path / "nested" / "kurz.db"
    db = Database.from_url(f"sqlite:///{path}")
    try:
        with pytest.raises(DatabaseUnavailable):
            await ensure_schema(db)
    finally:
        await db.dispose()
    assert not path.parent.exists()


async def test_downgrade_and_upgrade_round_trip(database_url: str) -> None:
    db = Database.from_url(database_url)
    try:
        await upgrade(db, "base")
        assert await schema_state(db) is SchemaState.EMPTY
        await upgrade(db)
        async with db.read() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await db.dispose()


async def test_0005_carries_the_clicks_recorded_under_0004_over(database_url: str) -> None:
    db = Database.from_url(database_url)

    def at(hour: int, minute: int = 0) -> datetime:
        return datetime(2026, 1, 1, hour, minute, tzinfo=UTC)

    old_events = sa.table("click_events", *(sa.column(c) for c in _OLD_EVENT_COLUMNS))
    try:
        await downgrade(db, "0004")
        async with db.write(READ_COMMITTED) as conn:
            for n, (hour, visitor) in enumerate([(1, "a"), (1, "b"), (2, "a")]):
                await conn.execute(
                    old_events.insert(),
                    {
                        "event_id": f"e{n}",
                        "link_id": 7,
                        "at": _stored(db, at(hour, 30)),
                        "referrer_host": None,
                        "browser": "Firefox",
                        "os": "Linux",
                        "device": "desktop",
                        "bot": False,
                        "country": None,
                        "visitor": visitor,
                    },
                )
                await conn.execute(
                    sa.text(
                        "INSERT INTO link_visitors_hourly (link_id, hour, visitor) "
                        "VALUES (7, :hour, :visitor) ON CONFLICT DO NOTHING"
                    ),
                    {"hour": _stored(db, at(hour)), "visitor": visitor},
                )
            for hour, clicks, uniques in [(1, 2, 2), (2, 1, 1)]:
                await conn.execute(
                    sa.text(
                        "INSERT INTO link_clicks_hourly (link_id, hour, clicks, bot_clicks, "
                        "uniques) VALUES (7, :hour, :clicks, 0, :uniques)"
                    ),
                    {"hour": _stored(db, at(hour)), "clicks": clicks, "uniques": uniques},
                )
            await conn.execute(
                sa.text(
                    "INSERT INTO link_clicks_daily (link_id, day, dimension, value, clicks) "
                    "VALUES (7, :day, 'browser', 'Firefox', 3)"
                ),
                {"day": _stored(db, at(0))},
            )
        await upgrade(db)
        async with db.read() as conn:
            events = (await conn.execute(sa.text("SELECT count(*) FROM click_events"))).scalar()
            totals = (
                await conn.execute(
                    sa.text("SELECT link_id, clicks, bot_clicks, uniques FROM link_clicks_daily")
                )
            ).all()
            breakdowns = (
                await conn.execute(
                    sa.text("SELECT dimension, value, clicks FROM link_breakdowns_daily")
                )
            ).all()
            assert await conn.run_sync(_diff) == []
        assert events == 3
        # Two hours, "a" in both: three clicks by two visitors that day.
        assert [tuple(row) for row in totals] == [(7, 3, 0, 2)]
        assert [tuple(row) for row in breakdowns] == [("browser", "Firefox", 3)]
    finally:
        await db.dispose()


_OLD_EVENT_COLUMNS = (
    "event_id", "link_id", "at", "referrer_host", "browser", "os", "device", "bot", "country",
    "visitor",
)  # fmt: skip


def _stored(db: Database, moment: datetime) -> object:
    """A timestamp as the UTCDateTime column stores it (raw SQL bypasses the type)."""
    if db.is_sqlite:
        return moment.replace(tzinfo=None).isoformat(" ", "microseconds")
    return moment


_KEYED_ONLY = (
    "click_batches",
    "link_clicks_hourly",
    "link_clicks_daily",
    "link_breakdowns_daily",
    "link_visitors_hourly",
    "link_visitors_daily",
)


async def _without_rowid(db: Database) -> dict[str, bool]:
    async with db.read() as conn:
        result = await conn.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table'"
        )
        rows: list[tuple[Any, ...]] = [tuple(row) for row in result]
    return {name: "WITHOUT ROWID" in sql.upper() for name, sql in rows if name in _KEYED_ONLY}


async def test_0006_makes_the_sqlite_rollups_without_rowid_and_keeps_their_rows(
    tmp_path: Path,
) -> None:
    db = Database.from_url(f"sqlite:///{tmp_path / 'kurz.db'}")
    day = _stored(db, datetime(2026, 1, 1, tzinfo=UTC))
    try:
        await upgrade(db, "0005")
        assert await _without_rowid(db) == dict.fromkeys(_KEYED_ONLY, False)
        async with db.write(READ_COMMITTED) as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO link_breakdowns_daily (link_id, dimension, day, value, clicks) "
                    "VALUES (7, 'browser', :day, 'Firefox', 3), (7, 'os', :day, 'Linux', 3)"
                ),
                {"day": day},
            )
            await conn.execute(sa.text("INSERT INTO click_batches (id) VALUES ('b1')"))
            for n in range(3):
                await conn.execute(
                    sa.text(
                        "INSERT INTO click_events (link_id, at, referrer_host, browser, os, "
                        "device, bot, country, visitor) VALUES (7, :at, NULL, 'Firefox', "
                        "'Linux', 'desktop', :bot, NULL, :visitor)"
                    ),
                    {"at": day, "bot": n == 2, "visitor": f"v{n}"},
                )

        await upgrade(db)
        assert await _without_rowid(db) == dict.fromkeys(_KEYED_ONLY, True)
        async with db.read() as conn:
            assert await conn.run_sync(_diff) == []
            rows = (
                await conn.execute(
                    sa.text("SELECT dimension, value, clicks FROM link_breakdowns_daily")
                )
            ).all()
            batches = (await conn.execute(sa.text("SELECT id FROM click_batches"))).all()
            viewed = (
                await conn.execute(
                    sa.text("SELECT link_id, at, bot, visitor FROM click_events ORDER BY visitor")
                )
            ).all()
        assert sorted(tuple(row) for row in rows) == [("browser", "Firefox", 3), ("os", "Linux", 3)]
        # The raw events, carried into one batch row of the log, and shown by the view.
        assert len(batches) == 2
        assert ("b1",) in [tuple(row) for row in batches]
        assert [tuple(row) for row in viewed] == [
            (7, "2026-01-01 00:00:00.000", 0, "v0"),
            (7, "2026-01-01 00:00:00.000", 0, "v1"),
            (7, "2026-01-01 00:00:00.000", 1, "v2"),
        ]
        async with db.write(READ_COMMITTED) as conn:
            # The key still refuses a duplicate: ON CONFLICT finds it.
            added = await conn.execute(
                sa.text("INSERT INTO click_batches (id) VALUES ('b1') ON CONFLICT DO NOTHING")
            )
            assert added.rowcount == 0

        await downgrade(db, "0005")
        assert await _without_rowid(db) == dict.fromkeys(_KEYED_ONLY, False)
        async with db.read() as conn:
            count = (
                await conn.execute(sa.text("SELECT count(*) FROM link_breakdowns_daily"))
            ).scalar()
            events = (
                await conn.execute(
                    sa.text("SELECT link_id, at, bot, visitor FROM click_events ORDER BY visitor")
                )
            ).all()
        assert count == 2
        # Back to a row per event, as 0005 stored them.
        assert [tuple(row) for row in events] == [
            (7, day, 0, "v0"),
            (7, day, 0, "v1"),
            (7, day, 1, "v2"),
        ]
    finally:
        await db.dispose()


async def test_0007_makes_every_existing_key_an_ordinary_key(database_url: str) -> None:
    db = Database.from_url(database_url)
    created = _stored(db, datetime(2026, 1, 1, tzinfo=UTC))
    secret = key_queries.new_secret()
    try:
        await downgrade(db, "0006")
        async with db.write(READ_COMMITTED) as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO api_keys (name, prefix, secret_hash, is_admin, created_at) "
                    "VALUES ('edge', 'kurz_x', :hash, :admin, :at)"
                ),
                {"hash": key_queries.hash_secret(secret), "admin": True, "at": created},
            )
        await upgrade(db)
        async with db.read() as conn:
            assert await conn.run_sync(_diff) == []
            check = await key_queries.authenticate(
                conn=conn, secret=secret, now=datetime(2026, 2, 1, tzinfo=UTC)
            )
        principal = check.principal
        assert principal is not None
        # Keys made before are ordinary: an edge proxy needs a new key, made with --proxy.
        assert (principal.is_admin, principal.is_proxy) == (True, False)

        await downgrade(db, "0006")
        async with db.read() as conn:
            names = (await conn.execute(sa.text("SELECT name FROM api_keys"))).all()
        assert [tuple(row) for row in names] == [("edge",)]
    finally:
        await db.dispose()


def _old_response(status: int, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    """An answer as 0002's table kept it: status, kept headers, body bytes."""
    kind = "application/json" if status < 400 else "application/problem+json"
    pairs = [["content-type", kind], *([k, v] for k, v in headers.items())]
    encoded = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return {"status": status, "headers": json.dumps(pairs), "body": encoded}


def _link(version: int) -> LinkRead:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return LinkRead(
        code="abc", short_url="https://k.example/abc", url="https://example.com/ü", alias=False,
        created_at=at, updated_at=at, expires_at=None, max_visits=None, redirect_status=302,
        forward_query=False, tags=["t"], version=version,
    )  # fmt: skip


def _problem_body(status: int, slug: str, path: str, **more: Any) -> dict[str, Any]:
    body = {"type": f"/problems/{slug}", "title": slug.title(), "status": status}
    return {**body, "detail": f"{slug}.", "instance": path, **more}


async def test_0008_converts_the_kept_responses_into_records(
    database_url: str, clock: FakeClock
) -> None:
    db = Database.from_url(database_url)
    links = "/api/v1/links"
    errors = [{"field": "url", "in": "body", "message": "bad"}]
    old = [
        ("c1", "POST", links, _old_response(
            201, json.loads(_link(1).model_dump_json()), location=f"{links}/abc", etag='"1"'
        )),
        ("c2", "POST", links, _old_response(
            422, _problem_body(422, "validation-error", links, errors=errors, hint="x")
        )),
        ("u1", "PATCH", f"{links}/abc", _old_response(
            200, json.loads(_link(2).model_dump_json()), etag='"2"'
        )),
        ("u2", "PATCH", f"{links}/abc", _old_response(
            412, _problem_body(412, "precondition-failed", f"{links}/abc"), etag='"2"'
        )),
        # One key on two links: one of the two records is kept.
        ("u1", "PATCH", f"{links}/xyz", _old_response(
            404, _problem_body(404, "not-found", f"{links}/xyz")
        )),
        # No operation kurz keys.
        ("d1", "DELETE", f"{links}/abc", _old_response(204, {})),
    ]  # fmt: skip
    at, expires = datetime(2026, 1, 1, tzinfo=UTC), datetime(2099, 1, 1, tzinfo=UTC)
    try:
        await downgrade(db, "0007")
        async with db.write(READ_COMMITTED) as conn:
            for key, method, path, response in old:
                await conn.execute(
                    sa.text(
                        "INSERT INTO idempotency_keys (scope, key, method, path, fingerprint, "
                        "status, headers, body, created_at, expires_at) VALUES ('key:1', :key, "
                        ":method, :path, :fingerprint, :status, :headers, :body, :at, :expires)"
                    ).bindparams(sa.bindparam("body", type_=sa.LargeBinary())),
                    {
                        "key": key, "method": method, "path": path, "fingerprint": "f" * 64,
                        **response, "at": _stored(db, at), "expires": _stored(db, expires),
                    },
                )  # fmt: skip
        await upgrade(db)
        async with db.read() as conn:
            assert await conn.run_sync(_diff) == []
            records = (
                await conn.execute(
                    sa.text(
                        "SELECT principal, operation, key, status FROM idempotency_keys "
                        "ORDER BY operation, key"
                    )
                )
            ).all()
        assert [tuple(row) for row in records] == [
            ("key:1", "create-link", "c1", 200),
            ("key:1", "create-link", "c2", 422),
            ("key:1", "update-link", "u1", 200),
            ("key:1", "update-link", "u2", 412),
        ]

        # The store replays them: the link, and the Problems with their members and ETag.
        idem = Idempotency(db, clock, ttl=60)

        async def replay(operation: str, key: str, fingerprint: str = "f" * 64) -> LinkRead:
            async def never(_conn: AsyncConnection) -> LinkRead:
                raise AssertionError("a converted record is replayed, not run")

            keyed = Keyed("key:1", operation, key, fingerprint)
            done = await idem.run(never, keyed, result=LinkRead)
            assert done.replayed
            return done.value

        assert await replay("create-link", "c1") == _link(1)
        assert await replay("update-link", "u1") == _link(2)
        with pytest.raises(ReplayedProblem) as refused:
            await replay("create-link", "c2")
        problem = refused.value
        assert (problem.status, problem.slug, problem.detail) == (
            422,
            "validation-error",
            "validation-error.",
        )
        assert (problem.errors, problem.extensions) == (errors, {"hint": "x"})
        with pytest.raises(ReplayedProblem) as stale:
            await replay("update-link", "u2")
        assert (stale.value.status, stale.value.headers) == (412, {"ETag": '"2"'})
        # The fingerprint of the raw body is not the validated input's: a retry across
        # the upgrade is refused as reused, and nothing runs twice.
        with pytest.raises(Problem) as reused:
            await replay("create-link", "c1", fingerprint="0" * 64)
        assert reused.value.slug == "idempotency-key-reused"

        await downgrade(db, "0007")
        async with db.read() as conn:
            back = (
                await conn.execute(
                    sa.text(
                        "SELECT scope, key, method, path, status, headers, body "
                        "FROM idempotency_keys ORDER BY key"
                    )
                )
            ).all()
        # A refused update names no link: it is dropped (a retry is refused again).
        kept = {(key, method, path): response for key, method, path, response in old}
        assert [(row.key, row.method, row.path) for row in back] == [
            ("c1", "POST", links), ("c2", "POST", links), ("u1", "PATCH", f"{links}/abc")
        ]  # fmt: skip
        for row in back:
            response = kept[(row.key, row.method, row.path)]
            assert (row.status, bytes(row.body)) == (response["status"], response["body"])
            assert dict(json.loads(row.headers)) == dict(json.loads(response["headers"]))
    finally:
        await db.dispose()


# The tables 0010 must carry over whole.
_KEPT = ("api_keys", "links", "link_tags", "link_clicks_daily", "click_batches", "idempotency_keys")


async def _counts(db: Database) -> dict[str, int]:
    async with db.read() as conn:
        return {
            table: (await conn.execute(sa.text(f"SELECT count(*) FROM {table}"))).scalar_one()  # noqa: S608
            for table in _KEPT
        }


async def _fill_0009(db: Database, secrets: dict[str, str]) -> dict[str, int]:
    """An admin key, a member key and a revoked key, with two links each (the member's
    second deleted), a tag, clicks and an idempotency record; returns the keys' ids."""
    at, revoked = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    kinds = {"admin": (True, None), "member": (False, None), "revoked": (False, revoked)}
    ids: dict[str, int] = {}
    async with db.write(READ_COMMITTED) as conn:
        for name, (admin, revoked_at) in kinds.items():
            ids[name] = (
                await conn.execute(
                    sa.text(
                        "INSERT INTO api_keys (name, prefix, secret_hash, is_admin, is_proxy, "
                        "created_at, revoked_at) VALUES (:name, 'kurz_x', :hash, :admin, false, "
                        ":at, :revoked) RETURNING id"
                    ),
                    {
                        "name": name, "hash": key_queries.hash_secret(secrets[name]),
                        "admin": admin, "at": _stored(db, at),
                        "revoked": None if revoked_at is None else _stored(db, revoked_at),
                    },
                )
            ).scalar_one()  # fmt: skip
            for n in (1, 2):
                deleted = _stored(db, revoked) if (name, n) == ("member", 2) else None
                await conn.execute(
                    sa.text(
                        "INSERT INTO links (code, url, is_alias, owner_id, created_at, "
                        "updated_at, redirect_status, forward_query, deleted_at) VALUES "
                        "(:code, 'https://example.com/', true, :owner, :at, :at, 302, false, "
                        ":deleted)"
                    ),
                    {"code": f"{name}-{n}", "owner": ids[name], "at": _stored(db, at),
                     "deleted": deleted},
                )  # fmt: skip
        await conn.execute(
            sa.text("INSERT INTO link_tags (link_id, tag) SELECT id, 't' FROM links")
        )
        await conn.execute(
            sa.text(
                "INSERT INTO link_clicks_daily (link_id, day, clicks, bot_clicks, uniques) "
                "SELECT id, :day, 3, 0, 2 FROM links"
            ),
            {"day": _stored(db, at)},
        )
        await conn.execute(sa.text("INSERT INTO click_batches (id, events) VALUES ('b1', '[]')"))
        await conn.execute(
            sa.text(
                "INSERT INTO idempotency_keys (principal, operation, key, fingerprint, status, "
                "result, created_at, expires_at) VALUES (:principal, 'create-link', 'k1', "
                ":fingerprint, 200, '{}', :at, :at)"
            ),
            {"principal": f"key:{ids['member']}", "fingerprint": "f" * 64, "at": _stored(db, at)},
        )
    return ids


async def _listed(app: Any, secret: str) -> list[str] | int:
    """The codes GET /api/v1/links lists for a key, or the status when it refuses."""
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {secret}"}
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, headers=headers) as c:
        response = await c.get("/api/v1/links")
    if response.status_code != 200:
        return response.status_code
    return sorted(item["code"] for item in response.json()["items"])


async def test_0010_gives_every_key_a_user_and_each_link_its_keys_user(
    database_url: str, clock: FakeClock
) -> None:
    db = Database.from_url(database_url)
    secrets = {name: key_queries.new_secret() for name in ("admin", "member", "revoked")}
    try:
        await downgrade(db, "0009")
        ids = await _fill_0009(db, secrets)
        before = await _counts(db)
        await upgrade(db)
        async with db.read() as conn:
            assert await conn.run_sync(_diff) == []
            users = (
                await conn.execute(
                    sa.text(
                        "SELECT k.id, u.email, u.display_name, u.role, u.password_hash, "
                        "u.disabled_at IS NOT NULL AS disabled, u.created_at = k.created_at "
                        "AS same_time FROM api_keys k JOIN users u ON u.id = k.user_id "
                        "ORDER BY k.id"
                    )
                )
            ).all()
            user_count = (await conn.execute(sa.text("SELECT count(*) FROM users"))).scalar()
            owners = (
                await conn.execute(
                    sa.text(
                        "SELECT l.code, k.name FROM links l JOIN users u ON u.id = l.user_id "
                        "JOIN api_keys k ON k.user_id = u.id ORDER BY l.code"
                    )
                )
            ).all()
        assert user_count == 3
        assert [tuple(row) for row in users] == [
            (ids["admin"], f"key-{ids['admin']}@migrated.invalid", "admin", "admin", None,
             False, True),
            (ids["member"], f"key-{ids['member']}@migrated.invalid", "member", "member", None,
             False, True),
            (ids["revoked"], f"key-{ids['revoked']}@migrated.invalid", "revoked", "member",
             None, True, True),
        ]  # fmt: skip
        # Each link's user is its key's: the key named in the code.
        assert [(code, name) for code, name in owners] == [
            (code, code.split("-")[0]) for code, _ in owners
        ]
        assert len(owners) == 6
        assert await _counts(db) == before

        # The API answers as before: visibility still follows the key.
        async with running(app_settings(database_url), clock) as app:
            assert await _listed(app, secrets["member"]) == ["member-1"]
            assert await _listed(app, secrets["admin"]) == [
                "admin-1", "admin-2", "member-1", "revoked-1", "revoked-2"
            ]  # fmt: skip
            assert await _listed(app, secrets["revoked"]) == 401
            # A link made now belongs to its key's user.
            transport = httpx.ASGITransport(app=app)
            headers = {"Authorization": f"Bearer {secrets['member']}"}
            async with httpx.AsyncClient(
                transport=transport, base_url=BASE_URL, headers=headers
            ) as member:
                made = await member.post("/api/v1/links", json={"url": "https://e.com/new"})
            assert made.status_code == 201
            async with db.read() as conn:
                mine = (
                    await conn.execute(
                        sa.text(
                            "SELECT l.user_id = k.user_id FROM links l JOIN api_keys k "
                            "ON k.id = :key WHERE l.code = :code"
                        ),
                        {"key": ids["member"], "code": made.json()["code"]},
                    )
                ).scalar_one()
            assert mine

        await downgrade(db, "0009")
        async with db.read() as conn:
            tables = await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names())
        assert "users" not in tables
        assert await _counts(db) == {**before, "links": before["links"] + 1}
        await upgrade(db)
        async with db.read() as conn:
            assert await conn.run_sync(_diff) == []
            again = (await conn.execute(sa.text("SELECT count(*) FROM users"))).scalar()
        assert again == 3
    finally:
        await db.dispose()


# The tables 0011 must carry over whole.
_KEPT_0011 = (
    "users", "api_keys", "links", "link_tags", "link_clicks_hourly", "link_clicks_daily",
    "link_breakdowns_daily", "idempotency_keys",
)  # fmt: skip
# Each key at 0010: its user's name, whether it is an admin key, a proxy key, revoked.
# "laptop" is a second key of the user of "ordinary".
_KEYS_0010 = {
    "ordinary": ("ann", False, False, False),
    "laptop": ("ann", False, False, False),
    "admin": ("ops", True, False, False),
    "proxy": ("edge", False, True, False),
    "revoked": ("gone", False, False, True),
}
# The scopes 0011 gave them: those of that day (`webhooks` came later, and is no key's
# unless it asks for it).
_MEMBER_0011: list[Scope] = ["links:read", "links:write", "stats:read"]
_POWERS: dict[str, list[Scope]] = {
    "ordinary": _MEMBER_0011,
    "laptop": _MEMBER_0011,
    "admin": [*_MEMBER_0011, "metrics:read", "admin"],
    "proxy": [*_MEMBER_0011, "proxy"],
    "revoked": _MEMBER_0011,
}


async def _counted(db: Database, tables: tuple[str, ...]) -> dict[str, int]:
    async with db.read() as conn:
        return {
            table: (await conn.execute(sa.text(f"SELECT count(*) FROM {table}"))).scalar_one()  # noqa: S608
            for table in tables
        }


async def _rows(db: Database, sql: str) -> list[tuple[Any, ...]]:
    async with db.read() as conn:
        return [tuple(row) for row in await conn.execute(sa.text(sql))]


async def _fill_0010(db: Database, secrets: dict[str, str]) -> dict[str, int]:
    """The keys of _KEYS_0010 with their users (as 0010 made them: an admin key's an
    admin, a revoked key's disabled), two links each (ordinary's second deleted) with
    tags, clicks in every rollup, and a kept answer to a keyed POST; the keys' ids."""
    at, revoked = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    keys: dict[str, int] = {}
    users: dict[str, int] = {}
    async with db.write(READ_COMMITTED) as conn:
        for name, (user, admin, proxy, is_revoked) in _KEYS_0010.items():
            if user not in users:
                users[user] = (
                    await conn.execute(
                        sa.text(
                            "INSERT INTO users (email, display_name, role, disabled_at, "
                            "created_at) VALUES (:email, :user, :role, :disabled, :at) "
                            "RETURNING id"
                        ),
                        {"email": f"{user}@migrated.invalid", "user": user,
                         "role": "admin" if admin else "member", "at": _stored(db, at),
                         "disabled": _stored(db, revoked) if is_revoked else None},
                    )
                ).scalar_one()  # fmt: skip
            keys[name] = (
                await conn.execute(
                    sa.text(
                        "INSERT INTO api_keys (name, prefix, secret_hash, is_admin, is_proxy, "
                        "created_at, revoked_at, user_id) VALUES (:name, 'kurz_x', :hash, "
                        ":admin, :proxy, :at, :revoked, :user) RETURNING id"
                    ),
                    {"name": name, "hash": key_queries.hash_secret(secrets[name]),
                     "admin": admin, "proxy": proxy, "at": _stored(db, at),
                     "revoked": _stored(db, revoked) if is_revoked else None,
                     "user": users[user]},
                )
            ).scalar_one()  # fmt: skip
            for n in (1, 2):
                deleted = _stored(db, revoked) if (name, n) == ("ordinary", 2) else None
                await conn.execute(
                    sa.text(
                        "INSERT INTO links (code, url, is_alias, owner_id, user_id, created_at, "
                        "updated_at, redirect_status, forward_query, deleted_at) VALUES "
                        "(:code, 'https://example.com/', true, :owner, :user, :at, :at, 302, "
                        "false, :deleted)"
                    ),
                    {"code": f"{name}-{n}", "owner": keys[name], "user": users[user],
                     "at": _stored(db, at), "deleted": deleted},
                )  # fmt: skip
        await conn.execute(
            sa.text("INSERT INTO link_tags (link_id, tag) SELECT id, 't' FROM links")
        )
        await conn.execute(
            sa.text(
                "INSERT INTO link_tags (link_id, tag) SELECT id, 'u' FROM links WHERE id % 2 = 0"
            )
        )
        for table, time in (("link_clicks_hourly", "hour"), ("link_clicks_daily", "day")):
            await conn.execute(
                sa.text(
                    f"INSERT INTO {table} (link_id, {time}, clicks, bot_clicks, uniques) "  # noqa: S608
                    "SELECT id, :at, 3, 1, 2 FROM links"
                ),
                {"at": _stored(db, at)},
            )
        await conn.execute(
            sa.text(
                "INSERT INTO link_breakdowns_daily (link_id, dimension, day, value, clicks) "
                "SELECT id, 'browser', :at, 'Firefox', 3 FROM links"
            ),
            {"at": _stored(db, at)},
        )
        await conn.execute(
            sa.text(
                "INSERT INTO idempotency_keys (principal, operation, key, fingerprint, status, "
                "result, created_at, expires_at) VALUES (:principal, 'create-link', 'k1', "
                ":fingerprint, 200, :result, :at, :expires)"
            ),
            {"principal": f"key:{keys['ordinary']}", "fingerprint": "f" * 64,
             "result": _link(1).model_dump_json(exclude={"created_by", "updated_by"}),
             "at": _stored(db, at), "expires": _stored(db, datetime(2099, 1, 1, tzinfo=UTC))},
        )  # fmt: skip
    return keys


_KEYS_AT_0010 = (
    "SELECT k.id, k.name, k.is_admin, k.is_proxy, k.user_id, k.revoked_at IS NOT NULL "
    "FROM api_keys k ORDER BY k.id"
)
_LINKS_AT_0010 = "SELECT id, code, owner_id, user_id, deleted_at IS NOT NULL FROM links ORDER BY id"
_LINKS_AT_0011 = (
    "SELECT id, code, user_id, created_by_user_id, created_by_key_id, updated_by_user_id, "
    "updated_by_key_id, deleted_at IS NOT NULL FROM links ORDER BY id"
)


async def test_0011_turns_key_powers_into_scopes_and_keeps_who_made_each_link(
    database_url: str, clock: FakeClock
) -> None:
    db = Database.from_url(database_url)
    secrets = {name: key_queries.new_secret() for name in _KEYS_0010}
    now = datetime(2026, 2, 1, tzinfo=UTC)
    try:
        await downgrade(db, "0010")
        ids = await _fill_0010(db, secrets)
        before = await _counted(db, _KEPT_0011)
        keys_before = await _rows(db, _KEYS_AT_0010)
        links_before = await _rows(db, _LINKS_AT_0010)
        name_of = {key_id: name for name, key_id in ids.items()}

        await upgrade(db)
        async with db.read() as conn:
            assert await conn.run_sync(_diff) == []
        assert await _counted(db, _KEPT_0011) == before
        stored = dict(await _rows(db, "SELECT id, scopes FROM api_keys"))
        assert {name_of[key_id]: sorted(parse_scopes(text)) for key_id, text in stored.items()} == {
            name: sorted(powers) for name, powers in _POWERS.items()
        }
        # Every live key authenticates as its user, with the powers it had.
        user_of = {row[0]: row[4] for row in keys_before}
        async with db.read() as conn:
            for name, secret in secrets.items():
                check = await key_queries.authenticate(conn=conn, secret=secret, now=now)
                if name == "revoked":
                    assert (check.principal, check.refused) == (None, "unknown")
                    continue
                principal = check.principal
                assert principal is not None, name
                assert (principal.key_id, principal.user_id) == (ids[name], user_of[ids[name]])
                assert principal.scopes == frozenset(_POWERS[name]), name
                assert (principal.is_admin, principal.is_proxy) == (
                    name == "admin",
                    name == "proxy",
                )
        # A link keeps its user; its key is now who made it, beside its user.
        made = await _rows(db, _LINKS_AT_0011)
        assert made == [
            (link_id, code, user, user, owner, None, None, deleted)
            for link_id, code, owner, user, deleted in links_before
        ]
        # A keyed POST answered before is answered the same: the store's principal is
        # still the key's ("key:<id>"), and the old record reads without created_by.
        idem = Idempotency(db, clock, ttl=60)

        async def never(_conn: AsyncConnection) -> LinkRead:
            raise AssertionError("a kept answer is replayed, not run")

        keyed = Keyed(f"key:{ids['ordinary']}", "create-link", "k1", "f" * 64)
        replayed = await idem.run(never, keyed, result=LinkRead)
        assert replayed.replayed
        assert replayed.value == _link(1)
        assert replayed.value.created_by is None

        # And back: the flags and owners as they were, nothing lost.
        await downgrade(db, "0010")
        assert await _counted(db, _KEPT_0011) == before
        assert await _rows(db, _KEYS_AT_0010) == keys_before
        assert await _rows(db, _LINKS_AT_0010) == links_before
        roles = dict(await _rows(db, "SELECT display_name, role FROM users"))
        # The proxy key's user was made an admin by the upgrade, and stays one.
        assert roles == {"ann": "member", "ops": "admin", "edge": "admin", "gone": "member"}

        await upgrade(db)
        async with db.read() as conn:
            assert await conn.run_sync(_diff) == []
        assert await _counted(db, _KEPT_0011) == before
        assert dict(await _rows(db, "SELECT id, scopes FROM api_keys")) == stored
        assert await _rows(db, _LINKS_AT_0011) == made
    finally:
        await db.dispose()


_LINKS_AT_0012 = "SELECT id, code, url, user_id, deleted_at IS NOT NULL FROM links ORDER BY id"


async def test_0012_keeps_every_link_and_its_code_on_the_default_domain(
    database_url: str, clock: FakeClock
) -> None:
    settings = app_settings(database_url)
    async with running(settings, clock) as app:
        async with app.state.kurz.db.write(READ_COMMITTED) as conn:
            key_in = ApiKeyCreate(name="ann", scopes=scopes_for(admin=False))
            made = await key_queries.create(conn=conn, key_in=key_in, now=utcnow(clock))
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {made.secret}"}
        async with httpx.AsyncClient(
            transport=transport, base_url=BASE_URL, headers=headers
        ) as api:
            for body in ({"alias": "keep"}, {}, {"alias": "gone"}):
                created = await api.post("/api/v1/links", json={"url": "https://e.com/", **body})
                assert created.status_code == 201, created.text
            assert (await api.delete("/api/v1/links/gone")).status_code == 204
    db = Database.from_url(database_url)
    try:
        before = await _rows(db, _LINKS_AT_0012)
        assert len(before) == 3
        await downgrade(db, "0011")
        assert await _rows(db, _LINKS_AT_0012) == before
        await upgrade(db)
        async with db.read() as conn:
            assert await conn.run_sync(_diff) == []
        assert await _rows(db, _LINKS_AT_0012) == before
        assert await _rows(db, "SELECT DISTINCT domain_id FROM links") == [(0,)]
    finally:
        await db.dispose()
    async with running(settings, clock) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as anon:
            assert (await anon.get("/keep")).headers["location"] == "https://e.com/"
            assert (await anon.get("/gone")).status_code == 404


async def test_0013_makes_the_links_made_before_it_searchable(
    database_url: str, clock: FakeClock
) -> None:
    settings = app_settings(database_url)

    async def search(secret: str, **params: Any) -> list[str]:
        async with running(settings, clock) as app:
            transport = httpx.ASGITransport(app=app)
            headers = {"Authorization": f"Bearer {secret}"}
            async with httpx.AsyncClient(
                transport=transport, base_url=BASE_URL, headers=headers
            ) as api:
                response = await api.get("/api/v1/links", params=params)
                assert response.status_code == 200, response.text
                return [item["code"] for item in response.json()["items"]]

    async with running(settings, clock) as app:
        async with app.state.kurz.db.write(READ_COMMITTED) as conn:
            key_in = ApiKeyCreate(name="ann", scopes=scopes_for(admin=False))
            made = await key_queries.create(conn=conn, key_in=key_in, now=utcnow(clock))
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {made.secret}"}
        async with httpx.AsyncClient(
            transport=transport, base_url=BASE_URL, headers=headers
        ) as api:
            bodies: list[dict[str, Any]] = [
                {"alias": "plans", "og_title": "Große Pläne", "tags": ["Team"]},
                {"alias": "bill", "url": "https://e.com/invoice"},
                {"alias": "gone", "og_title": "Große Pläne"},
            ]
            for body in bodies:
                created = await api.post("/api/v1/links", json={"url": "https://e.com/", **body})
                assert created.status_code == 201, created.text
            assert (await api.delete("/api/v1/links/gone")).status_code == 204
    db = Database.from_url(database_url)
    try:
        await downgrade(db, "0012")
        await upgrade(db)
        async with db.read() as conn:
            assert await conn.run_sync(_diff) == []
        assert await _rows(db, "SELECT code, search FROM links ORDER BY id") == [
            ("plans", "plans\nhttps://e.com/\ngroße pläne\nteam".casefold()),
            ("bill", "bill\nhttps://e.com/invoice\n"),
            ("gone", "gone\nhttps://e.com/\ngrosse pläne"),
        ]
    finally:
        await db.dispose()
    assert await search(made.secret, q="GROSSE") == ["plans"]
    assert await search(made.secret, q="pl") == ["plans"]
    assert await search(made.secret, q="team", sort="code") == ["plans"]
    assert await search(made.secret, q="voice") == ["bill"]
    # A short query through the index (0015), at the end of a link's text.
    assert await search(made.secret, q="am") == ["plans"]


async def test_0014_fills_the_owner_rollups_from_the_daily_rows(database_url: str) -> None:
    db = Database.from_url(database_url)
    at, next_day = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    try:
        await downgrade(db, "0013")
        async with db.write(READ_COMMITTED) as conn:
            owners = [
                (
                    await conn.execute(
                        sa.text(
                            "INSERT INTO users (email, display_name, role, created_at) "
                            "VALUES (:email, :name, 'member', :at) RETURNING id"
                        ),
                        {"email": f"{name}@example.com", "name": name, "at": _stored(db, at)},
                    )
                ).scalar_one()
                for name in ("ann", "ben")
            ]
            # (code, owner, deleted): Ann's second link is deleted, Ben's has bots only.
            made = {}
            for code, owner, deleted in (
                ("a1", owners[0], False), ("a2", owners[0], True), ("b1", owners[1], False),
            ):  # fmt: skip
                made[code] = (
                    await conn.execute(
                        sa.text(
                            "INSERT INTO links (code, url, is_alias, user_id, created_at, "
                            "updated_at, redirect_status, forward_query, deleted_at) VALUES "
                            "(:code, 'https://example.com/', true, :user, :at, :at, 302, "
                            "false, :deleted) RETURNING id"
                        ),
                        {"code": code, "user": owner, "at": _stored(db, at),
                         "deleted": _stored(db, next_day) if deleted else None},
                    )
                ).scalar_one()  # fmt: skip
            # (link, day, clicks, bot clicks, uniques)
            for code, day, clicks, bots, uniques in (
                ("a1", at, 5, 1, 4), ("a1", next_day, 2, 0, 2), ("a2", at, 3, 0, 3),
                ("b1", at, 0, 7, 0),
            ):  # fmt: skip
                await conn.execute(
                    sa.text(
                        "INSERT INTO link_clicks_daily (link_id, day, clicks, bot_clicks, "
                        "uniques) VALUES (:link, :day, :clicks, :bots, :uniques)"
                    ),
                    {"link": made[code], "day": _stored(db, day), "clicks": clicks,
                     "bots": bots, "uniques": uniques},
                )  # fmt: skip
        daily_before = await _rows(db, "SELECT * FROM link_clicks_daily ORDER BY link_id, day")

        await upgrade(db)
        async with db.read() as conn:
            assert await conn.run_sync(_diff) == []
        ann, ben = owners
        by_day = await _rows(
            db,
            "SELECT user_id, day, clicks, bot_clicks, uniques FROM owner_clicks_daily "
            "ORDER BY user_id, day",
        )
        # The deleted link's clicks count in its owner's days; bots' clicks too, apart.
        assert by_day == [
            (ann, _stored(db, at), 8, 1, 7),
            (ann, _stored(db, next_day), 2, 0, 2),
            (ben, _stored(db, at), 0, 7, 0),
        ]
        # Clicks by people of all time; a link only bots followed has no row.
        assert await _rows(
            db, "SELECT link_id, user_id, clicks FROM link_clicks_total ORDER BY link_id"
        ) == [(made["a1"], ann, 7), (made["a2"], ann, 3)]

        await downgrade(db, "0013")
        async with db.read() as conn:
            tables = await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names())
        assert not {"owner_clicks_daily", "link_clicks_total"} & set(tables)
        assert await _rows(db, "SELECT * FROM link_clicks_daily ORDER BY link_id, day") == (
            daily_before
        )
        await upgrade(db)
        async with db.read() as conn:
            assert await conn.run_sync(_diff) == []
        assert len(await _rows(db, "SELECT * FROM owner_clicks_daily")) == 3
    finally:
        await db.dispose()
