"""`kurz keys create/list/revoke`, as an operator runs them: keys for a named user
within their role, with scopes and an expiry; mistakes are one line and exit code 1."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
from typer.testing import CliRunner, Result

from kurz.accounts import users
from kurz.auth import queries as key_queries
from kurz.auth.models import ApiKeyRead
from kurz.cli import app
from kurz.db import READ_COMMITTED, Database
from tests.integration.auth.support import audit_log

T = TypeVar("T")


def on(database_url: str, work: Callable[[Database], Awaitable[T]]) -> T:
    async def run() -> T:
        db = Database.from_url(database_url)
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(run())


def new_user(database_url: str, email: str, role: str = "member") -> int:
    async def work(db: Database) -> int:
        async with db.write(READ_COMMITTED) as conn:
            return await users.create(conn, email=email, role=role, now=datetime.now(UTC))

    return on(database_url, work)


def stored(database_url: str) -> list[ApiKeyRead]:
    async def work(db: Database) -> list[ApiKeyRead]:
        async with db.read() as conn:
            return await key_queries.list_(conn=conn)

    return on(database_url, work)


@pytest.fixture
def kurz(database_url: str) -> Callable[..., Result]:
    runner = CliRunner()

    def run(*args: str) -> Result:
        # Wide enough that a table keeps each key on one line.
        env = {"KURZ_DATABASE_URL": database_url, "COLUMNS": "250"}
        return runner.invoke(app, list(args), env=env)

    return run


def test_a_key_for_a_named_user_with_scopes_and_an_expiry(
    database_url: str, kurz: Callable[..., Result]
) -> None:
    alice = new_user(database_url, "alice@example.com")
    made = kurz(
        "keys", "create", "--name", "ci", "--user", " Alice@Example.com ",
        "--scope", "links:read", "--scope", "stats:read", "--expires-in", "30d",
    )  # fmt: skip
    assert made.exit_code == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("kurz_")
    [key] = stored(database_url)
    assert (key.user, key.name, key.scopes) == (alice, "ci", ["links:read", "stats:read"])
    assert key.expires_at is not None
    left = key.expires_at - datetime.now(UTC)
    assert timedelta(days=29) < left <= timedelta(days=30)
    [event] = on(database_url, audit_log)
    assert (event["event"], event["actor_user_id"], event["user_id"]) == (
        "key-created",
        None,
        alice,
    )

    dated = kurz("keys", "create", "--name", "dated", "--user", "alice@example.com",
                 "--expires", "2999-01-01T00:00:00+01:00")  # fmt: skip
    assert dated.exit_code == 0, dated.stderr
    assert stored(database_url)[1].expires_at == datetime(2998, 12, 31, 23, tzinfo=UTC)

    listed = kurz("keys", "list", "--user", "alice@example.com")
    assert listed.exit_code == 0, listed.stderr
    [row] = [line for line in listed.stdout.splitlines() if " ci " in line]
    assert "alice@example.com" in row
    assert "links:read stats:read" in row
    assert key.expires_at.isoformat(timespec="seconds") in row


def test_shorthands_and_a_user_of_its_own(database_url: str, kurz: Callable[..., Result]) -> None:
    for args in (["--admin"], ["--proxy"], [], ["--scope", "metrics:read"]):
        made = kurz("keys", "create", "--name", "x", *args)
        assert made.exit_code == 0, made.stderr
    keys = stored(database_url)
    assert [key.scopes for key in keys] == [
        ["links:read", "links:write", "stats:read", "webhooks", "metrics:read", "admin"],
        ["links:read", "links:write", "stats:read", "proxy"],
        ["links:read", "links:write", "stats:read"],
        ["metrics:read"],
    ]
    # Each a user of its own, with the role its scopes need.
    assert len({key.user for key in keys}) == 4
    listed = kurz("keys", "list")
    assert listed.exit_code == 0, listed.stderr
    assert f"key-{keys[0].id}@keys.invalid" in listed.stdout


def test_revoking_a_key(database_url: str, kurz: Callable[..., Result]) -> None:
    assert kurz("keys", "create", "--name", "x").exit_code == 0
    [key] = stored(database_url)
    for _ in range(2):
        revoked = kurz("keys", "revoke", str(key.id))
        assert revoked.exit_code == 0, revoked.stderr
    assert stored(database_url)[0].revoked_at is not None
    assert [e["event"] for e in on(database_url, audit_log)] == ["key-created", "key-revoked"]
    missing = kurz("keys", "revoke", "999")
    assert missing.exit_code == 1
    assert "No API key '999'" in missing.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user", "nobody@example.com"], "No user has the email nobody@example.com."),
        (["--user", "not an address"], "An email address has no spaces"),
        (["--scope", "links:delete"], "unknown scope 'links:delete'"),
        (["--user", "bob@example.com", "--proxy"], "The role `member` does not allow `proxy`"),
        (
            ["--user", "bob@example.com", "--scope", "admin", "--scope", "metrics:read"],
            "does not allow `metrics:read`, `admin`",
        ),
        (["--expires", "2020-01-01T00:00:00Z"], "expires_at: must be in the future"),
        (["--expires", "next week"], "--expires: 'next week' is not an ISO 8601 date-time"),
        (["--expires-in", "30 days"], "not a duration like 30d"),
        (["--expires", "2999-01-01", "--expires-in", "1d"], "not both"),
        (["--name", ""], "invalid name"),
    ],
)
def test_mistakes_are_one_clear_line_and_exit_code_1(
    database_url: str, kurz: Callable[..., Result], args: list[str], message: str
) -> None:
    new_user(database_url, "bob@example.com")
    named = args if "--name" in args else ["--name", "x", *args]
    failed = kurz("keys", "create", *named)
    assert failed.exit_code == 1, failed.stdout
    assert failed.stdout == ""
    assert failed.stderr.startswith("error: ")
    assert message in failed.stderr
    assert len(failed.stderr.strip().splitlines()) == 1
    assert "Traceback" not in failed.stderr
    assert stored(database_url) == []
    unknown = kurz("keys", "list", "--user", "nobody@example.com")
    assert (unknown.exit_code, unknown.stderr.strip()) == (
        1,
        "error: No user has the email nobody@example.com.",
    )
