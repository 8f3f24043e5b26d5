"""POST /api/v1/imports and its reading side, on SQLite and PostgreSQL: a file uploaded
as a form and an API's settings sent as JSON or as form fields start imports that a
worker runs; the caller follows them and reads their reports, failures filtered; every
refusal is a problem: scopes, another user's import, sizes, a bad body or source."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from kurz.config import Settings
from kurz.db import Database
from kurz.db.tables import jobs, links
from tests.conftest import app_settings
from tests.integration.auth import support
from tests.integration.auth.people import PROBLEM, client
from tests.integration.imports.front import CSV, GOOD, Opened, run_jobs, with_kinds
from tests.integration.web.people import browser_of
from tests.support import FakeClock

IMPORTS = "/api/v1/imports"


@pytest.fixture
def settings(database_url: str) -> Settings:
    # The smallest file limit, so that a small body is over it.
    return app_settings(database_url, import_max_bytes=1024)


@pytest.fixture
def opened(app: FastAPI) -> Opened:
    return with_kinds(app)


@pytest.fixture
async def ada(app: FastAPI, db: Database, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    made = await support.member(db, clock, "ada@example.com")
    async with client(app, made.secret) as http:
        yield http


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def fields(body: dict[str, Any]) -> list[str]:
    return [error["field"] for error in body.get("errors", [])]


async def upload(http: httpx.AsyncClient, source: str, body: bytes, **data: str) -> httpx.Response:
    files = {"file": ("links.txt", body, "text/plain")}
    return await http.post(IMPORTS, data={"source": source, **data}, files=files)


async def test_a_file_uploaded_is_imported_by_a_worker_and_reported(
    app: FastAPI, ada: httpx.AsyncClient, opened: Opened
) -> None:
    started = await upload(ada, "csv", CSV, on_conflict="rename")
    assert started.status_code == 202, started.text
    made = started.json()
    assert started.headers["location"] == f"{IMPORTS}/{made['id']}"
    assert (made["source"], made["status"], made["filename"]) == ("csv", "queued", "links.txt")
    assert (made["on_conflict"], made["domain"], made["read"]) == ("rename", None, 0)

    await run_jobs(app)
    assert opened.seen == [("csv", {}, CSV, False)]
    done = (await ada.get(started.headers["location"])).json()
    assert done["status"] == "finished", done
    assert (done["total"], done["read"], done["imported"], done["skipped"], done["failed"]) == (
        4,
        4,
        3,
        0,
        1,
    )
    report = (await ada.get(f"{IMPORTS}/{made['id']}/report")).json()
    assert [(row["n"], row["place"], row["outcome"]) for row in report["rows"]] == [
        (1, "line 1", "imported"),
        (2, "line 2", "imported"),
        (3, "line 3", "failed"),
        (4, "line 4", "imported"),
    ]
    assert report["rows"][0]["code"] == "one"
    assert report["rows"][2]["reason"] == "not a URL"
    assert report["next_after"] is None
    failed = await ada.get(f"{IMPORTS}/{made['id']}/report", params={"outcome": "failed"})
    assert [row["n"] for row in failed.json()["rows"]] == [3]
    paged = await ada.get(f"{IMPORTS}/{made['id']}/report", params={"limit": 2})
    assert ([row["n"] for row in paged.json()["rows"]], paged.json()["next_after"]) == ([1, 2], 2)
    rest = await ada.get(f"{IMPORTS}/{made['id']}/report", params={"after": 2})
    assert [row["n"] for row in rest.json()["rows"]] == [3, 4]
    mine = await ada.get("/api/v1/links", params={"limit": 10})
    assert sorted(link["url"] for link in mine.json()["items"]) == [
        "https://example.com/one",
        "https://example.com/three",
        "https://example.com/two",
    ]


async def test_an_apis_settings_come_as_json_or_as_form_fields(
    app: FastAPI, db: Database, ada: httpx.AsyncClient, opened: Opened
) -> None:
    body = {
        "source": "bitly",
        "settings": {"token": GOOD, "group_guid": "Bg1"},
        "on_conflict": "fail",
    }
    as_json = await ada.post(IMPORTS, json=body)
    assert as_json.status_code == 202, as_json.text
    form = {"source": "shlink", "api_url": "http://127.0.0.1:9/rest", "api_key": GOOD}
    as_form = await ada.post(IMPORTS, data=form)
    assert as_form.status_code == 202, as_form.text
    await run_jobs(app)
    assert sorted(opened.seen) == [
        (
            "bitly",
            {
                "token": GOOD,
                "api_url": "https://api-ssl.bitly.com/v4",
                "group_guid": "Bg1",
                "clicks": True,
            },
            None,
            False,
        ),
        ("shlink", {"api_url": "http://127.0.0.1:9/rest", "api_key": GOOD}, None, False),
    ]
    for started in (as_json, as_form):
        done = (await ada.get(started.headers["location"])).json()
        assert (done["status"], done["imported"]) == ("finished", 2), done
    # Two sources, each with its own ids: each made its own two links.
    async with db.read() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(links)) == 4
        kinds = await conn.scalars(sa.select(jobs.c.kind).order_by(jobs.c.id))
        assert list(kinds).count("run-import") == 2


async def test_a_source_that_cannot_be_read_fails_the_import_with_why(
    app: FastAPI, ada: httpx.AsyncClient, opened: Opened
) -> None:
    started = await ada.post(IMPORTS, json={"source": "kutt", "settings": {"database_url": "x"}})
    assert started.status_code == 202, started.text
    await run_jobs(app)
    done = (await ada.get(started.headers["location"])).json()
    assert (done["status"], done["error"], done["read"]) == (
        "failed",
        "the source refused the token",
        0,
    )


async def test_listing_is_newest_first_by_keyset(ada: httpx.AsyncClient, opened: Opened) -> None:
    ids = []
    for _ in range(3):
        started = await upload(ada, "csv", CSV)
        ids.append(started.json()["id"])
    first = (await ada.get(IMPORTS, params={"limit": 2})).json()
    assert [one["id"] for one in first["items"]] == ids[:0:-1]
    assert first["next_after"] == ids[1]
    rest = (await ada.get(IMPORTS, params={"limit": 2, "after": first["next_after"]})).json()
    assert ([one["id"] for one in rest["items"]], rest["next_after"]) == ([ids[0]], None)
    problem(await ada.get(IMPORTS, params={"limit": 0}), 422)
    problem(await ada.get(IMPORTS, params={"after": "x"}), 422)


async def test_another_users_import_is_not_found(
    app: FastAPI, db: Database, clock: FakeClock, ada: httpx.AsyncClient, opened: Opened
) -> None:
    started = await upload(ada, "csv", CSV)
    one = started.headers["location"]
    bob = await support.member(db, clock, "bob@example.com")
    async with client(app, bob.secret) as http:
        assert problem(await http.get(one), 404)["detail"] == f"No import {started.json()['id']}."
        problem(await http.get(f"{one}/report"), 404)
        assert (await http.get(IMPORTS)).json() == {"items": [], "next_after": None}
    problem(await ada.get(f"{IMPORTS}/999999"), 404)
    problem(await ada.get(f"{IMPORTS}/999999/report"), 404)
    problem(await ada.get(f"{IMPORTS}/nine"), 422)
    problem(await ada.get(f"{one}/report", params={"outcome": "lost"}), 422)
    # An admin sees every import.
    root = await support.admin(db, clock, "root@example.com")
    async with client(app, root.secret) as http:
        assert (await http.get(one)).status_code == 200


async def test_scopes_and_credentials(
    app: FastAPI, db: Database, clock: FakeClock, opened: Opened
) -> None:
    reader = await support.member(db, clock, "reader@example.com", "links:read")
    nothing = await support.member(db, clock, "none@example.com", "stats:read")
    async with client(app, reader.secret) as http:
        refused = problem(await upload(http, "csv", CSV), 403)
        assert refused["required_scope"] == "links:write"
        assert (await http.get(IMPORTS)).status_code == 200
    async with client(app, nothing.secret) as http:
        for path in (IMPORTS, f"{IMPORTS}/1", f"{IMPORTS}/1/report"):
            assert problem(await http.get(path), 403)["required_scope"] == "links:read"
    async with client(app) as anon:
        problem(await upload(anon, "csv", CSV), 401)
        problem(await anon.get(IMPORTS), 401)
    async with db.read() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(jobs)) == 0


async def test_what_is_refused_and_why(
    db: Database, clock: FakeClock, ada: httpx.AsyncClient, opened: Opened
) -> None:
    unknown = problem(await ada.post(IMPORTS, json={"source": "tinyurl"}), 422)
    assert fields(unknown) == ["source"]
    no_file = problem(await ada.post(IMPORTS, json={"source": "csv"}), 422)
    assert fields(no_file) == ["file"]
    no_file = problem(await ada.post(IMPORTS, data={"source": "csv"}), 422)
    assert fields(no_file) == ["file"]
    not_wanted = problem(await upload(ada, "bitly", CSV, token=GOOD), 422)
    assert fields(not_wanted) == ["file"]
    no_token = problem(await ada.post(IMPORTS, json={"source": "bitly", "settings": {}}), 422)
    assert fields(no_token) == ["settings.token"]
    no_key = problem(await ada.post(IMPORTS, data={"source": "shlink", "api_url": "x"}), 422)
    assert fields(no_key) == ["settings.api_key"]
    conflict = {"source": "bitly", "settings": {"token": GOOD}, "on_conflict": "merge"}
    assert fields(problem(await ada.post(IMPORTS, json=conflict), 422)) == ["on_conflict"]
    extra = {"source": "bitly", "settings": {"token": GOOD}, "since": "2020"}
    assert fields(problem(await ada.post(IMPORTS, json=extra), 422)) == ["since"]
    elsewhere = {"source": "bitly", "settings": {"token": GOOD}, "domain": "go.example"}
    assert fields(problem(await ada.post(IMPORTS, json=elsewhere), 422)) == ["domain"]
    await support.member(db, clock, "bob@example.com")
    theirs = {"source": "bitly", "settings": {"token": GOOD}, "owner": "bob@example.com"}
    assert fields(problem(await ada.post(IMPORTS, json=theirs), 422)) == ["owner"]

    malformed = {"Content-Type": "application/json"}
    body = problem(await ada.post(IMPORTS, content=b"{", headers=malformed), 400)
    assert body["type"] == "/problems/malformed-json"
    plain = {"Content-Type": "text/plain"}
    body = problem(await ada.post(IMPORTS, content=b"source=csv", headers=plain), 415)
    assert body["type"] == "/problems/unsupported-media-type"
    problem(await ada.post(IMPORTS), 415)
    no_boundary = {"Content-Type": "multipart/form-data"}
    problem(await ada.post(IMPORTS, content=b"--x\r\nnonsense", headers=no_boundary), 400)
    async with db.read() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(jobs)) == 0


async def test_sizes_a_file_over_the_import_limit_and_json_over_the_body_limit(
    ada: httpx.AsyncClient, db: Database, opened: Opened
) -> None:
    # The file limit is 1,024 bytes here: the form is let in, the file is refused.
    over = b"https://example.com/x\n" * 50
    body = problem(await upload(ada, "csv", over), 413)
    assert body["detail"] == "The file exceeds 1,024 bytes (KURZ_IMPORT_MAX_BYTES)."
    assert (await upload(ada, "csv", over[:1024])).status_code == 202
    # Past the file's limit and the form's fields' (KURZ_MAX_BODY_BYTES): refused unread.
    huge = b"x" * (1024 + 64 * 1024 + 1)
    body = problem(await upload(ada, "csv", huge), 413)
    assert body["type"] == "/problems/payload-too-large"

    async def streamed() -> AsyncIterator[bytes]:
        yield b'{"source": "bitly", "settings": {"token": "'
        for _ in range(70):
            yield b"x" * 1024
        yield b'"}}'

    as_json = {"Content-Type": "application/json"}
    problem(await ada.post(IMPORTS, content=streamed(), headers=as_json), 413)
    async with db.read() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(jobs)) == 1


async def test_an_admin_imports_for_another_user(
    app: FastAPI, db: Database, clock: FakeClock, opened: Opened
) -> None:
    bob = await support.member(db, clock, "bob@example.com")
    root = await support.admin(db, clock, "root@example.com")
    async with client(app, root.secret) as http:
        theirs = {"source": "bitly", "settings": {"token": GOOD}, "owner": "Bob@Example.com"}
        started = await http.post(IMPORTS, json=theirs)
        assert started.status_code == 202, started.text
        nobody = {**theirs, "owner": "nobody@example.com"}
        assert fields(problem(await http.post(IMPORTS, json=nobody), 422)) == ["owner"]
    await run_jobs(app)
    async with client(app, bob.secret) as http:
        listed = (await http.get(IMPORTS)).json()["items"]
        assert [(one["id"], one["imported"]) for one in listed] == [(started.json()["id"], 2)]
        mine = (await http.get("/api/v1/links")).json()["items"]
        assert len(mine) == 2


async def test_signed_in_an_upload_needs_the_sessions_csrf_token(
    app: FastAPI, db: Database, clock: FakeClock, opened: Opened
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        refused = problem(await upload(ada.http, "csv", CSV), 403)
        assert refused["type"] == "/problems/csrf-failed"
        started = await ada.http.post(
            IMPORTS,
            data={"source": "csv"},
            files={"file": ("links.txt", CSV, "text/plain")},
            headers={"X-CSRF-Token": ada.csrf},
        )
        assert started.status_code == 202, started.text
