"""GET /api/v1/export: every field of every link the caller may see, their statistics,
CSV for spreadsheets, produced a page at a time; on both deployments."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import MutableMapping
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from kurz.accounts import Passwords
from kurz.db import Database
from kurz.db.tables import links
from kurz.exports.models import ROWS_PER_LINE
from kurz.exports.service import Exports
from tests.conftest import PG_ADMIN_DSN, app_settings
from tests.integration.analytics.rollups import Rollups
from tests.integration.auth import support as people
from tests.integration.auth.people import client
from tests.integration.exports.support import (
    EXTRA,
    by_code,
    of_type,
    parsed,
    statistics,
    stored,
)
from tests.integration.links.support import create
from tests.support import FakeClock, running

EXPORT = "/api/v1/export"
PROBLEM = "application/problem+json"


async def ids_of(db: Database) -> dict[int, str]:
    async with db.read() as conn:
        rows = await conn.execute(sa.select(links.c.id, links.c.code))
        return {int(link_id): code for link_id, code in rows}


async def export(api: httpx.AsyncClient, **params: str) -> httpx.Response:
    response = await api.get(EXPORT, params=params)
    assert response.status_code == 200, response.text
    return response


async def test_a_link_line_is_the_link_as_the_api_renders_it_and_what_a_copy_needs(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    admin = await people.admin(db, clock, "root@example.com")
    alice = await people.member(db, clock, "alice@example.com")
    async with client(app, admin.secret) as root, client(app, alice.secret) as api:
        made = await root.post("/api/v1/domains", json={"host": "go.example"})
        assert made.status_code == 201, made.text
        await create(
            api,
            url="https://example.com/full",
            domain="go.example",
            alias="spring",
            tags=["launch", "b, with a comma"],
            valid_from=clock.iso(60),
            expires_at=clock.iso(86_400),
            max_visits=5,
            fallbacks={"expired": "https://example.com/over", "used_up": "https://example.com/u"},
            redirect_status=301,
            forward_query=True,
            rules=[
                {"url": "https://example.com/de", "match": "any",
                 "conditions": [{"type": "country", "in": ["DE", "AT"]},
                                {"type": "language", "in": ["de"]}]},
            ],
            variants=[{"url": "https://example.com/a", "weight": 70},
                      {"url": "https://example.com/b", "weight": 30}],
            variant_choice="sticky",
            password="open sesame",
            og_title="Spring",
            og_description="The spring sale",
            og_image="https://example.com/spring.png",
        )  # fmt: skip
        plain = await create(api, url="https://example.com/plain")
        capped = await create(api, url="https://example.com/capped", max_visits=3)
        async with client(app) as anon:
            assert (await anon.get(f"/{capped['code']}")).status_code == 302
        changed = await api.patch(
            f"/api/v1/links/{plain['code']}", json={"tags": ["x"]}, headers={"If-Match": "*"}
        )
        assert changed.status_code == 200

        lines = parsed((await export(api)).content)
        found = by_code(lines)
        assert set(found) == {"spring", plain["code"], capped["code"]}
        ids = {code: link_id for link_id, code in (await ids_of(db)).items()}
        for code, line in found.items():
            domain = "go.example" if code == "spring" else None
            shown = await api.get(
                f"/api/v1/links/{code}", params={"domain": domain} if domain else {}
            )
            assert {k: v for k, v in line.items() if k not in EXTRA} == shown.json()
            assert line["id"] == ids[code]
            assert line["owner"] == "alice@example.com"
            assert line["default_domain"] is (domain is None)
            assert line["deleted_at"] is None
        full = found["spring"]
        assert full["domain"] == "go.example"
        assert full["short_url"] == "https://go.example/spring"
        assert full["password_protected"] is True
        assert full["password_hash"].startswith("$argon2id$")
        assert Passwords().verify(full["password_hash"], "open sesame")
        assert "open sesame" not in (await export(api)).text
        assert found[plain["code"]]["password_hash"] is None
        assert found[capped["code"]]["visits"] == 1
        assert found[plain["code"]]["updated_by"] == {"user": alice.user_id, "key": alice.key_id}

    header = lines[0]
    assert header["format"] == "kurz-export"
    assert header["version"] == 1
    assert header["exported_at"] == "2026-01-01T00:00:00Z"  # the test clock's now
    assert (header["links"], header["user"], header["statistics"]) == (
        "user",
        "alice@example.com",
        True,
    )
    assert header["base_url"] == "https://kurz.test"
    assert header["default_domain"] == "kurz.test"
    assert lines[-1] == {
        "type": "end", "links": 3, "deleted_links": 0,
        "clicks_daily": 0, "clicks_hourly": 0, "breakdowns_daily": 0,
    }  # fmt: skip


def _seed(rollups: Rollups, link_id: int, *, days: int, hours: int, values: int) -> None:
    for d in range(days):
        rollups.day(link_id, f"2025-12-{1 + d:02d}", clicks=10 + d, uniques=5 + d, bots=d % 3)
    for h in range(hours):
        rollups.hour(link_id, _hour(h), clicks=h % 7 + 1, uniques=1, bots=h % 2)
    dimensions = ("country", "referrer", "bot", "variant")
    for v in range(values):
        rollups.value(link_id, f"2025-12-{1 + v % 5:02d}", dimensions[v % 4], f"v{v}", v + 1)


def _hour(n: int) -> str:
    at = datetime(2025, 10, 1, tzinfo=UTC) + timedelta(hours=n)
    return at.strftime("%Y-%m-%d %H:%M")


async def test_statistics_lines_hold_every_rollup_row_of_each_link_after_its_line(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    alice = await people.member(db, clock, "alice@example.com")
    async with client(app, alice.secret) as api:
        codes = [(await create(api, alias=f"link-{i}"))["code"] for i in range(5)]
        ids = {code: link_id for link_id, code in (await ids_of(db)).items()}
        rollups = Rollups()
        # Rows that fill more than one line (ROWS_PER_LINE), and more than one chunk of
        # the small export below, and links without any.
        _seed(rollups, ids["link-0"], days=7, hours=ROWS_PER_LINE + 200, values=11)
        _seed(rollups, ids["link-2"], days=1, hours=3, values=2)
        _seed(rollups, ids["link-3"], days=4, hours=0, values=9)
        await rollups.write(db)

        lines = parsed((await export(api)).content)
    expected = await stored(db, {ids[code]: code for code in codes})
    assert statistics(lines) == expected
    assert len(expected["clicks_hourly"]) == ROWS_PER_LINE + 203
    hourly = of_type(lines, "clicks_hourly")
    assert [(line["code"], len(line["rows"])) for line in hourly] == [
        ("link-0", ROWS_PER_LINE), ("link-0", 200), ("link-2", 3),
    ]  # fmt: skip
    assert lines[-1]["clicks_hourly"] == ROWS_PER_LINE + 203
    assert lines[-1]["clicks_daily"] == 12
    assert lines[-1]["breakdowns_daily"] == 22

    # Two links a page and three rows a chunk: every keyset step (within a link, from
    # one to the next, from page to page) gives the same rows.
    small = Exports(db=db, clock=clock, base_url="https://kurz.test", page_size=2, chunk_rows=3)
    export_ = small.open(export_format="jsonl", user_id=alice.user_id, statistics=True)
    pieces = [piece async for piece in export_]
    assert statistics(parsed(b"".join(pieces))) == expected
    assert len(pieces) > 3 * 2


async def test_a_member_exports_their_live_links_and_an_admin_every_link(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    admin = await people.admin(db, clock, "root@example.com")
    alice = await people.member(db, clock, "alice@example.com")
    bob = await people.member(db, clock, "bob@example.com")
    reader = await people.new_key(db, clock, alice.user_id, ["links:read"])
    async with (
        client(app, alice.secret) as api,
        client(app, bob.secret) as bobs,
        client(app, admin.secret) as root,
        client(app, reader.secret) as reads,
    ):
        kept = await create(api, alias="alice-kept")
        gone = await create(api, alias="alice-gone")
        await create(bobs, alias="bob-only", url="https://example.com/bob")
        deleted = await api.delete(f"/api/v1/links/{gone['code']}")
        assert deleted.status_code == 204
        ids = {code: link_id for link_id, code in (await ids_of(db)).items()}
        rollups = Rollups()
        for code in ids:
            _seed(rollups, ids[code], days=2, hours=2, values=2)
        await rollups.write(db)

        mine = parsed((await export(api)).content)
        theirs = parsed((await export(bobs)).content)
        every = parsed((await export(root)).content)
        links_only = parsed((await export(reads)).content)

    assert set(by_code(mine)) == {kept["code"]}
    assert {line["code"] for line in mine[1:-1]} == {kept["code"]}
    assert "bob" not in b"".join(str(line).encode() for line in mine[1:]).decode()
    assert set(by_code(theirs)) == {"bob-only"}
    assert {line["code"] for line in theirs[1:-1]} == {"bob-only"}

    assert (every[0]["links"], every[0]["user"]) == ("all", None)
    assert set(by_code(every)) == set(ids)
    assert by_code(every)[gone["code"]]["deleted_at"] == "2026-01-01T00:00:00Z"
    assert by_code(every)["bob-only"]["owner"] == "bob@example.com"
    assert statistics(every) == await stored(db, {link_id: code for code, link_id in ids.items()})
    assert every[-1]["deleted_links"] == 1

    # links:read without stats:read: the links, and no statistics.
    assert links_only[0]["statistics"] is False
    assert [line["type"] for line in links_only] == ["export", "link", "end"]


async def test_csv_quotes_commas_quotes_and_line_breaks_and_defuses_formulas(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    admin = await people.admin(db, clock, "root@example.com")
    title = 'Sale, "big" one\nsecond line'
    tags = ["a,b", 'say "hi"', "=cmd", "line; semi"]
    async with client(app, admin.secret) as api:
        link = await create(
            api, alias="quoted", og_title=title, tags=tags, og_description="=1+2", max_visits=9
        )
        gone = await create(api, alias="gone-link")
        assert (await api.delete(f"/api/v1/links/{gone['code']}")).status_code == 204
        response = await export(api, format="csv")

    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"].startswith('attachment; filename="kurz-export-')
    assert response.headers["content-disposition"].endswith('.csv"')
    assert b'"Sale, ""big"" one\nsecond line"' in response.content
    rows = list(csv.DictReader(io.StringIO(response.content.decode(), newline="")))
    [row] = rows  # the deleted link is left out
    assert row["code"] == "quoted"
    assert row["title"] == title
    # Tags come sorted; the cell begins with "=cmd", so it gets an apostrophe.
    assert row["tags"] == "'" + "\n".join(sorted(tags))
    assert row["tags"].removeprefix("'").split("\n") == sorted(tags)
    assert row["description"] == "'=1+2"
    assert row["short_url"] == link["short_url"]
    assert row["domain"] == "kurz.test"
    assert (row["alias"], row["max_visits"], row["visits"], row["clicks"]) == (
        "true",
        "9",
        "0",
        "0",
    )
    assert row["created_at"] == link["created_at"]
    assert row["valid_from"] == ""
    assert row["owner"] == "root@example.com"


async def test_a_format_other_than_jsonl_or_csv_is_a_422_problem(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    alice = await people.member(db, clock, "alice@example.com")
    async with client(app, alice.secret) as api:
        response = await api.get(EXPORT, params={"format": "xml"})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert [(error["field"], error["in"]) for error in body["errors"]] == [("format", "query")]


class SentPieces:
    """An ASGI `send` that notes, for each piece of the body sent, how many pages of
    links the export had read by then (counting the statements that read them)."""

    def __init__(self, db: Database) -> None:
        self.pages_read = 0
        self.pages_at: list[int] = []
        self.status = 0
        self.body = b""
        self.finished = asyncio.Event()
        sa.event.listen(db.engine.sync_engine, "before_cursor_execute", self._statement)

    def _statement(self, *args: Any) -> None:
        statement: str = args[2]
        if "users.email AS owner" in statement:
            self.pages_read += 1

    async def __call__(self, message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body" and message.get("body"):
            self.pages_at.append(self.pages_read)
            self.body += message["body"]
        if message["type"] == "http.response.body" and not message.get("more_body"):
            self.finished.set()


async def test_the_export_is_sent_a_page_at_a_time(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    alice = await people.member(db, clock, "alice@example.com")
    async with client(app, alice.secret) as api:
        for i in range(5):
            await create(api, alias=f"link-{i}")
    parts = app.state.kurz
    parts.exports.page_size = 2
    sent = SentPieces(db)
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "https", "path": EXPORT, "raw_path": EXPORT.encode(), "root_path": "",
        "query_string": b"format=jsonl", "server": ("kurz.test", 443), "client": ("10.0.0.1", 1),
        "headers": [(b"host", b"kurz.test"), (b"authorization", f"Bearer {alice.secret}".encode())],
    }  # fmt: skip

    asked = False

    async def receive() -> dict[str, Any]:
        # The request once; then, as a client that stays, nothing until the response ends.
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await sent.finished.wait()
        return {"type": "http.disconnect"}

    await app(scope, receive, sent)
    assert sent.status == 200
    lines = parsed(sent.body)
    assert len(by_code(lines)) == 5
    # Three pages (2, 2 and 1 links), each sent before the next was read: the first
    # piece (the header and the first page) went out when one page had been read.
    assert sent.pages_read == 3
    assert sent.pages_at[0] == 1
    assert sent.pages_at[:3] == [1, 2, 3]


async def test_a_database_that_does_not_answer_is_a_503_before_any_byte_is_sent(
    postgres_url: str, clock: FakeClock
) -> None:
    # The key's check is kept for a minute, so that the export's own read is the first
    # to meet the dropped connections.
    async with running(app_settings(postgres_url, auth_cache_ttl=60), clock) as app:
        alice = await people.member(app.state.kurz.db, clock, "alice@example.com")
        async with client(app, alice.secret) as api:
            await export(api)
            conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
            try:
                await conn.execute(
                    "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
                    " WHERE datname = $1 AND pid <> pg_backend_pid()",
                    postgres_url.rsplit("/", 1)[1],
                )
            finally:
                await conn.close()
            response = await api.get(EXPORT)
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == "/problems/database-unavailable"
