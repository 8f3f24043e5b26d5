"""The imports pages: choosing a source gives its form (a file, or its settings, a
secret as a password field); a file uploaded there starts an import whose page follows
it (htmx asks every 2 s while it runs, and reloads the page once it has ended) and shows
its report, failures first, filtered by outcome; errors beside their fields; another
user's import is a 404 page; a form without its CSRF token starts nothing. On SQLite
and PostgreSQL."""

from __future__ import annotations

import re

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from kurz.auth.cookies import CSRF_FIELD
from kurz.config import Settings
from kurz.db import Database
from kurz.db.tables import imports
from tests.conftest import app_settings
from tests.integration.imports.front import CSV, GOOD, Opened, run_jobs, with_kinds
from tests.integration.web.people import Browser, assert_page, browser_of, error_beside
from tests.support import FakeClock

POLLING = 'hx-get="/_/imports/{}/progress" hx-trigger="every 2s" hx-swap="outerHTML"'


@pytest.fixture
def settings(database_url: str) -> Settings:
    return app_settings(database_url, import_max_bytes=1024)


@pytest.fixture
def opened(app: FastAPI) -> Opened:
    return with_kinds(app)


async def upload(
    ada: Browser, source: str, body: bytes | None, *, csrf: bool = True, **data: str
) -> httpx.Response:
    fields = {"source": source, **data}
    if csrf:
        fields[CSRF_FIELD] = ada.csrf
    # A browser sends the file part even when no file was chosen: empty, unnamed.
    files = {"file": ("links.txt" if body is not None else "", body or b"", "text/plain")}
    return await ada.http.post("/_/imports", data=fields, files=files)


def report_places(page: str) -> list[tuple[str, str]]:
    """The report's rows: where, and the outcome."""
    return re.findall(r'<th scope="row" class="url">([^<]*)</th>\n<td>(?:<strong>)?(\w+)', page)


async def test_a_file_uploaded_on_the_page_is_followed_to_its_report(
    app: FastAPI, db: Database, clock: FakeClock, opened: Opened
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        listed = assert_page(await ada.http.get("/_/imports"))
        assert '<a href="/_/imports" aria-current="page">Imports</a>' in listed
        assert "You have not imported anything yet." in listed
        assert '<option value="bitly">Test bitly</option>' in listed
        form = assert_page(await ada.http.get("/_/imports/new", params={"source": "csv"}))
        assert '<input id="file" name="file" type="file" required>' in form
        assert 'enctype="multipart/form-data"' in form
        assert "Up to 1 KiB, as the source exported it." in form
        assert f'name="{CSRF_FIELD}" value="{ada.csrf}"' in form

        started = await upload(ada, "csv", CSV, on_conflict="rename")
        assert started.status_code == 303, started.text
        page_path = started.headers["location"]
        [import_id] = re.findall(r"^/_/imports/(\d+)$", page_path)
        queued = assert_page(await ada.http.get(page_path))
        assert POLLING.format(import_id) in queued
        assert "Waiting for a worker to start it." in queued
        assert "No link read yet." in queued
        progress = f"/_/imports/{import_id}/progress"
        polled = await ada.http.get(progress, headers={"HX-Request": "true"})
        fragment = assert_page(polled)
        assert fragment.startswith('<section id="import-progress"')
        assert POLLING.format(import_id) in fragment
        assert "hx-refresh" not in polled.headers

        await run_jobs(app)
        assert opened.seen == [("csv", {}, CSV, False)]
        ended = await ada.http.get(progress, headers={"HX-Request": "true"})
        assert ended.headers["hx-refresh"] == "true"
        assert "hx-trigger" not in assert_page(ended)
        done = assert_page(await ada.http.get(page_path))
        assert "hx-trigger" not in done
        assert "Finished" in done
        assert '<div class="big">3</div>imported' in done
        assert '<div class="big">1</div>failed' in done
        # Failures first, then the rest in order.
        assert report_places(done) == [
            ("line 3", "failed"),
            ("line 1", "imported"),
            ("line 2", "imported"),
            ("line 4", "imported"),
        ]
        assert "<td>not a URL</td>" in done
        assert "<code>one</code>" in done
        failed = assert_page(await ada.http.get(page_path, params={"outcome": "failed"}))
        assert report_places(failed) == [("line 3", "failed")]
        assert f'<a href="/_/imports/{import_id}?outcome=failed" aria-current="page">' in failed
        skipped = assert_page(await ada.http.get(page_path, params={"outcome": "skipped"}))
        assert "No link of the report has this outcome." in skipped

        listed = assert_page(await ada.http.get("/_/imports"))
        assert f'<a href="/_/imports/{import_id}">Test csv</a>' in listed
        assert "4 of 4" in listed


async def test_a_source_with_settings_has_their_fields_and_errors_beside_them(
    app: FastAPI, db: Database, clock: FakeClock, opened: Opened
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        form = assert_page(await ada.http.get("/_/imports/new", params={"source": "bitly"}))
        assert 'type="file"' not in form
        assert re.search(r'<input id="token" name="token" type="password"[^>]* required', form)
        assert re.search(r'<input id="group_guid" name="group_guid" type="text"', form)
        assert "A Bitly access token." in form
        assert 'placeholder="https://api-ssl.bitly.com/v4"' in form
        assert '<option value="true" selected>Yes</option>' in form
        # A member names no owner.
        assert 'id="owner"' not in form

        refused = await upload(ada, "bitly", None, group_guid="Bg1")
        page = assert_page(refused, 422)
        assert error_beside(page, "token") == "Field required"
        assert 'value="Bg1"' in page
        refused = await upload(ada, "csv", None)
        assert error_beside(assert_page(refused, 422), "file")

        started = await upload(ada, "bitly", None, token="refused-token")
        assert started.status_code == 303, started.text
        await run_jobs(app)
        page = assert_page(await ada.http.get(started.headers["location"]))
        assert "<strong>Failed</strong>" in page
        assert '<p class="notice error" role="alert">the source refused the token</p>' in page

        started = await upload(ada, "bitly", None, token=GOOD, clicks="false", api_url="")
        assert started.status_code == 303, started.text
        await run_jobs(app)
        assert opened.seen[-1] == (
            "bitly",
            {
                "token": GOOD,
                "api_url": "https://api-ssl.bitly.com/v4",
                "group_guid": None,
                "clicks": False,
            },
            None,
            False,
        )


async def test_a_file_over_the_limit_is_refused_beside_the_form(
    app: FastAPI, db: Database, clock: FakeClock, opened: Opened
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        page = assert_page(await upload(ada, "csv", b"https://example.com/\n" * 60), 413)
        assert "The file exceeds 1,024 bytes (KURZ_IMPORT_MAX_BYTES)." in page
        async with db.read() as conn:
            assert await conn.scalar(sa.select(sa.func.count()).select_from(imports)) == 0


async def test_another_users_import_is_a_404_page_and_csrf_is_checked(
    app: FastAPI, db: Database, clock: FakeClock, opened: Opened
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        refused = await upload(ada, "csv", CSV, csrf=False)
        assert "CSRF" in assert_page(refused, 403)
        async with db.read() as conn:
            assert await conn.scalar(sa.select(sa.func.count()).select_from(imports)) == 0
        started = await upload(ada, "csv", CSV)
        assert started.status_code == 303
        page_path = started.headers["location"]
        async with browser_of(app, db, clock, "bob@example.com") as bob:
            assert_page(await bob.http.get(page_path), 404)
            assert_page(await bob.http.get(page_path + "/progress"), 404)
            assert "You have not imported anything yet." in assert_page(
                await bob.http.get("/_/imports")
            )
            assert_page(await bob.http.get("/_/imports/new", params={"source": "tinyurl"}), 404)
        async with browser_of(app, db, clock, "eve@example.com", role="admin") as eve:
            assert_page(await eve.http.get(page_path))
            form = assert_page(await eve.http.get("/_/imports/new", params={"source": "csv"}))
            assert 'id="owner"' in form


async def test_signed_out_the_pages_send_to_sign_in(app: FastAPI) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://kurz.test"
    ) as anon:
        found = await anon.get("/_/imports")
        assert (found.status_code, found.headers["location"]) == (
            303,
            "/_/signin?next=/_/imports",
        )
