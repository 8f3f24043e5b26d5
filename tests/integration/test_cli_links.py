"""`kurz links list|show|delete|stats`, and `--json` on every listing: what the CLI
prints is what the API renders for the same links, read and deleted through the same
use cases; tables stay whole on a pipe."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from kurz.clock import system_clock
from kurz.db import Database
from kurz.db.tables import links as links_table
from kurz.jobs import JobStore
from tests.conftest import BASE_URL, app_settings
from tests.integration.analytics.rollups import Rollups
from tests.integration.auth import support as people
from tests.support import FakeClock, running

LONG_URL = "https://example.com/" + "a-long-path/" * 20
_people = itertools.count(1)
Calls = Callable[[httpx.AsyncClient, Database], Awaitable[Any]]


def through_the_api(
    database_url: str, calls: Calls, *, admin: bool = True, email: str | None = None
) -> Any:
    """`calls` made with an admin's key (or a member's) to an app on the database."""

    async def run() -> Any:
        async with running(app_settings(database_url), system_clock) as app:
            db: Database = app.state.kurz.db
            clock = FakeClock()
            maker = people.admin if admin else people.member
            made = await maker(db, clock, email or f"admin-{next(_people)}@example.com")
            headers = {"Authorization": f"Bearer {made.secret}"}
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url=BASE_URL, headers=headers
            ) as client:
                return await calls(client, db)

    return asyncio.run(run())


@pytest.fixture
def kurz(database_url: str) -> Callable[..., Result]:
    runner = CliRunner()

    def run(*args: str, answer: str | None = None) -> Result:
        # No COLUMNS: output is a pipe, as in a script.
        env = {"KURZ_DATABASE_URL": database_url, "KURZ_BASE_URL": BASE_URL, "COLUMNS": None}
        return runner.invoke(app_cli(), list(args), env=env, input=answer)

    return run


def app_cli() -> Any:
    from kurz.cli import app

    return app


def json_lines(text: str) -> list[Any]:
    return [json.loads(line) for line in text.splitlines()]


def seeded(database_url: str) -> None:
    """The admin's link `news` (tagged, a long URL) and `plain`; a member's `mine`."""

    async def admins(client: httpx.AsyncClient, _db: Database) -> None:
        for body in (
            {"url": LONG_URL, "alias": "news", "tags": ["press"]},
            {"url": "https://example.com/plain", "alias": "plain"},
        ):
            made = await client.post("/api/v1/links", json=body)
            assert made.status_code == 201, made.text

    async def members(client: httpx.AsyncClient, _db: Database) -> None:
        made = await client.post(
            "/api/v1/links", json={"url": "https://example.org/m", "alias": "mine"}
        )
        assert made.status_code == 201, made.text

    through_the_api(database_url, admins)
    through_the_api(database_url, members, admin=False, email="member@example.com")


def test_list_and_show_print_what_the_api_renders(
    database_url: str, kurz: Callable[..., Result]
) -> None:
    seeded(database_url)

    async def reads(client: httpx.AsyncClient, _db: Database) -> dict[str, Any]:
        every = await client.get("/api/v1/links", params={"limit": 100})
        tagged = await client.get("/api/v1/links", params={"tag": "press"})
        one = await client.get("/api/v1/links/news")
        return {"every": every.json()["items"], "tagged": tagged.json()["items"], "one": one.json()}

    api = through_the_api(database_url, reads)
    assert [link["code"] for link in api["every"]] == ["mine", "plain", "news"]

    listed = kurz("links", "list", "--json")
    assert listed.exit_code == 0, listed.stderr
    assert json_lines(listed.stdout) == api["every"]
    assert listed.stderr == ""

    tagged = kurz("links", "list", "--tag", "press", "--json")
    assert json_lines(tagged.stdout) == api["tagged"]
    assert [
        link["code"] for link in json_lines(kurz("links", "list", "-q", "PLAIN", "--json").stdout)
    ] == ["plain"]
    theirs = kurz("links", "list", "--user", "Member@Example.com", "--json")
    assert [link["code"] for link in json_lines(theirs.stdout)] == ["mine"]

    shown = kurz("links", "show", "news", "--json")
    assert shown.exit_code == 0, shown.stderr
    assert json.loads(shown.stdout) == api["one"]


def test_a_limited_list_says_how_to_go_on(database_url: str, kurz: Callable[..., Result]) -> None:
    seeded(database_url)
    first = kurz("links", "list", "--limit", "2", "--json")
    assert [link["code"] for link in json_lines(first.stdout)] == ["mine", "plain"]
    said = first.stderr.strip()
    assert said.startswith("more: kurz links list --cursor ")
    cursor = said.split("--cursor ", 1)[1].split()[0]
    rest = kurz("links", "list", "--cursor", cursor, "--json")
    assert [link["code"] for link in json_lines(rest.stdout)] == ["news"]
    assert rest.stderr == ""


def test_tables_are_whole_on_a_pipe(database_url: str, kurz: Callable[..., Result]) -> None:
    seeded(database_url)
    listed = kurz("links", "list")
    assert listed.exit_code == 0, listed.stderr
    [row] = [line for line in listed.stdout.splitlines() if " news " in line]
    assert LONG_URL in row
    assert f"{BASE_URL}/news" in row
    assert "press" in row
    shown = kurz("links", "show", "news")
    assert any(LONG_URL in line and "url" in line for line in shown.stdout.splitlines())


def test_stats_print_what_the_api_renders(database_url: str, kurz: Callable[..., Result]) -> None:
    seeded(database_url)
    today = datetime.now(UTC).date()
    first = today - timedelta(days=6)

    async def clicks(client: httpx.AsyncClient, db: Database) -> dict[str, Any]:
        async with db.read() as conn:
            link_id = (
                await conn.execute(sa.select(links_table.c.id).where(links_table.c.code == "news"))
            ).scalar_one()
        rollups = Rollups()
        rollups.day(link_id, first.isoformat(), clicks=5, uniques=4, bots=1)
        rollups.value(link_id, first.isoformat(), "country", "DE", 5)
        await rollups.write(db)
        params = {
            "from": f"{first.isoformat()}T00:00:00Z",
            "to": f"{(today + timedelta(days=1)).isoformat()}T00:00:00Z",
        }
        found = await client.get("/api/v1/links/news/stats", params=params)
        assert found.status_code == 200, found.text
        body: dict[str, Any] = found.json()
        return body

    api = through_the_api(database_url, clicks)
    assert api["totals"]["clicks"] == 5

    printed = kurz("links", "stats", "news", "--days", "7", "--json")
    assert printed.exit_code == 0, printed.stderr
    assert json.loads(printed.stdout) == api

    table = kurz("links", "stats", "news", "--days", "7")
    assert table.exit_code == 0, table.stderr
    assert table.stdout.splitlines()[0] == (
        f"news: 5 clicks, 4 visitor-days, 1 by bots, {first} to {today + timedelta(days=1)} (UTC)"
    )
    assert any("DE" in line and "5" in line for line in table.stdout.splitlines())


def test_delete_asks_and_leaves_a_tombstone(database_url: str, kurz: Callable[..., Result]) -> None:
    seeded(database_url)
    kept = kurz("links", "delete", "news", answer="n\n")
    assert kept.exit_code == 1
    assert "nothing deleted" in kept.stderr
    assert kurz("links", "show", "news").exit_code == 0

    deleted = kurz("links", "delete", "news", answer="y\n")
    assert deleted.exit_code == 0, deleted.stderr
    assert "deleted news" in deleted.stderr
    assert kurz("links", "delete", "plain", "--yes").exit_code == 0

    async def after(client: httpx.AsyncClient, db: Database) -> tuple[int, int, Any]:
        gone = await client.get("/api/v1/links/news")
        again = await client.post(
            "/api/v1/links", json={"url": "https://x.example/", "alias": "news"}
        )
        async with db.read() as conn:
            row = (
                await conn.execute(
                    sa.select(links_table.c.deleted_at).where(links_table.c.code == "news")
                )
            ).one()
        return gone.status_code, again.status_code, row.deleted_at

    gone, again, deleted_at = through_the_api(database_url, after)
    # A tombstone: the code is never used again.
    assert (gone, again) == (404, 409)
    assert deleted_at is not None

    missing = kurz("links", "show", "news")
    assert missing.exit_code == 2
    assert missing.stderr.strip() == "error: No link with code 'news'."
    assert kurz("links", "delete", "news", "--yes").exit_code == 2


def test_deleting_needs_an_admin_to_act_as(sqlite_url: str) -> None:
    env = {"KURZ_DATABASE_URL": sqlite_url, "KURZ_BASE_URL": BASE_URL}
    refused = CliRunner().invoke(app_cli(), ["links", "delete", "x", "--yes"], env=env)
    assert refused.exit_code == 2
    assert "no admin to act as" in refused.stderr
    # Reading needs none.
    listed = CliRunner().invoke(app_cli(), ["links", "list", "--json"], env=env)
    assert (listed.exit_code, listed.stdout) == (0, "")


def test_every_listing_prints_json_lines_as_the_api_renders(
    database_url: str, kurz: Callable[..., Result]
) -> None:
    async def reads(client: httpx.AsyncClient, db: Database) -> dict[str, Any]:
        made = await client.post("/api/v1/domains", json={"host": "go.example"})
        assert made.status_code == 201, made.text
        await JobStore(db, system_clock).enqueue("send-webhook", {"message": 7})
        keys = await client.get("/api/v1/keys")
        users = await client.get("/api/v1/users", params={"limit": 100})
        domains = await client.get("/api/v1/domains")
        return {
            "keys": keys.json()["items"],
            "users": users.json()["items"],
            "domains": domains.json()["items"],
        }

    api = through_the_api(database_url, reads)
    assert json_lines(kurz("keys", "list", "--json").stdout) == api["keys"]
    assert json_lines(kurz("users", "list", "--json").stdout) == api["users"]
    assert json_lines(kurz("domains", "list", "--json").stdout) == api["domains"]
    [job] = json_lines(kurz("jobs", "list", "--json").stdout)
    assert (job["kind"], job["payload"], job["state"], job["attempts"]) == (
        "send-webhook", {"message": 7}, "queued", 0,
    )  # fmt: skip
    assert job["run_at"].endswith("Z") or job["run_at"].endswith("+00:00")


def test_a_refused_filter_is_one_line_and_exit_2(kurz: Callable[..., Result]) -> None:
    for args, said in (
        (["--sort", "bogus"], "error: sort: must be one of newest, oldest, code"),
        (["--cursor", "zzz"], "error: cursor: is not a cursor this API returned"),
        (["--user", "nobody@example.com"], "error: --user: no user nobody@example.com"),
        (
            ["--domain", "nope.example"],
            "error: domain: names no domain of this kurz's (GET /api/v1/domains lists them)",
        ),
    ):
        refused = kurz("links", "list", *args)
        assert (refused.exit_code, refused.stderr, refused.stdout) == (2, said + "\n", "")
