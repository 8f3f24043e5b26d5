"""The admin pages: only an admin finds them (a member gets the 404 page); users
(invite, role, disable, reset links, the last admin kept), domains (add, edit, remove,
in use), dead jobs (their last error, retry) and the system page; every form without
its CSRF token is refused and changes nothing. On SQLite and PostgreSQL."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from kurz.accounts.service import Users
from kurz.config import Settings
from kurz.db import Database
from kurz.db.tables import one_time_tokens
from kurz.jobs import Job, JobState, JobStore
from kurz.links.domain_models import DomainCreate
from kurz.links.domain_service import DomainAdmin
from kurz.web.admin.system import address, age
from tests.conftest import BASE_URL, Deployment
from tests.integration.auth.people import client, new_key, new_user, sessions_of
from tests.integration.web.people import Browser, assert_page, browser_of, error_beside
from tests.support import FakeClock, running

ADMIN_PAGES = ["/_/admin", "/_/admin/users", "/_/admin/domains", "/_/admin/jobs", "/_/admin/system"]


@pytest.fixture
async def ada(app: FastAPI, db: Database, clock: FakeClock) -> AsyncIterator[Browser]:
    """The one admin."""
    async with browser_of(app, db, clock, "ada@example.com", role="admin") as browser:
        yield browser


def users_of(app: FastAPI) -> Users:
    found: Users = app.state.kurz.users
    return found


def jobs_of(app: FastAPI) -> JobStore:
    found: JobStore = app.state.kurz.jobs
    return found


def domains_of(app: FastAPI) -> DomainAdmin:
    found: DomainAdmin = app.state.kurz.domain_admin
    return found


def link_on(page: str) -> str:
    """The one-time link shown on an answer page (in its readonly input)."""
    found = re.search(r'<input id="link" type="text" value="([^"]+)" readonly', page)
    assert found is not None, page
    return html.unescape(found.group(1))


def notice(page: str) -> str:
    found = re.search(r'<p class="notice(?: error)?" role="(?:status|alert)">([^<]*)</p>', page)
    assert found is not None, page
    return html.unescape(found.group(1))


async def dead_job(jobs: JobStore, error: str) -> Job:
    """A job that failed its only attempt, as a worker records it."""
    job = await jobs.enqueue("send-report", {"to": "ops"}, max_attempts=1)
    [claimed] = await jobs.claim(worker="w1", limit=1, lease=30)
    assert claimed.id == job.id
    assert await jobs.fail(job.id, worker="w1", error=error, retry_in=None) is JobState.DEAD
    return job


async def test_a_member_finds_no_admin_pages(app: FastAPI, db: Database, clock: FakeClock) -> None:
    async with browser_of(app, db, clock, "bob@example.com") as bob:
        for path in ADMIN_PAGES:
            assert "Not Found" in assert_page(await bob.http.get(path), 404), path
        invite = {"email": "eve@example.com", "role": "admin"}
        assert_page(await bob.post_form("/_/admin/users", invite), 404)
        assert_page(await bob.post_form(f"/_/admin/users/{bob.user_id}", {"role": "admin"}), 404)
        assert_page(await bob.post_form("/_/admin/domains", {"host": "go.example"}), 404)
        job = await dead_job(jobs_of(app), "boom")
        assert_page(await bob.post_form(f"/_/admin/jobs/{job.id}/retry"), 404)
        assert (await users_of(app).get(user_id=bob.user_id)).role == "member"
        assert await users_of(app).invitations() == []
        assert (await domains_of(app).list_()).items == []
        assert (await jobs_of(app).get(job.id)).state is JobState.DEAD  # type: ignore[union-attr]


async def test_an_admin_sees_every_admin_page(ada: Browser) -> None:
    index = assert_page(await ada.http.get("/_/admin"))
    for path in ADMIN_PAGES[1:]:
        assert f'href="{path}"' in index
        assert_page(await ada.http.get(path))
    assert 'href="/_/admin" aria-current="page"' in index
    # A malformed query is a page saying so, never a 500.
    assert "cursor" in assert_page(await ada.http.get("/_/admin/users?cursor=abc"), 422)
    for path in ("/_/admin/users?done=x", "/_/admin/users?user=0", "/_/admin/domains?done=x"):
        assert_page(await ada.http.get(path), 400)


async def test_an_invitation_link_is_shown_once_and_makes_the_account(
    app: FastAPI, ada: Browser
) -> None:
    page = assert_page(await ada.post_form("/_/admin/users", {"email": "Bob@Example.com"}), 201)
    url = link_on(page)
    assert url.startswith(f"{BASE_URL}/_/invite/")
    assert 'data-copy-from="link"' in page
    listed = assert_page(await ada.http.get("/_/admin/users"))
    assert "bob@example.com" in listed  # pending
    assert url not in listed

    async with client(app) as anon:
        path = url.removeprefix(BASE_URL)
        assert "bob@example.com" in assert_page(await anon.get(path))
        password = {"password": "a long new password", "password_again": "a long new password"}
        assert "is ready" in assert_page(await anon.post(path, data=password))
    joined = await users_of(app).by_email(email="bob@example.com")
    assert joined.role == "member"
    assert await users_of(app).invitations() == []


async def test_invitation_errors_are_shown_beside_their_fields(ada: Browser) -> None:
    page = assert_page(await ada.post_form("/_/admin/users", {"email": "not an address"}), 422)
    assert error_beside(page, "email")
    assert 'value="not an address"' in page
    page = assert_page(await ada.post_form("/_/admin/users", {"email": "ada@example.com"}), 409)
    assert error_beside(page, "email") == "An account has this address."
    page = assert_page(
        await ada.post_form("/_/admin/users", {"email": "x@example.com", "role": "owner"}), 422
    )
    assert error_beside(page, "role")


async def test_an_admin_changes_a_role_and_disables_and_enables_a_user(
    app: FastAPI, db: Database, clock: FakeClock, ada: Browser
) -> None:
    async with browser_of(app, db, clock, "bob@example.com") as bob:
        users = users_of(app)
        done = await ada.post_form(f"/_/admin/users/{bob.user_id}", {"role": "admin"})
        assert done.status_code == 303
        page = assert_page(await ada.http.get(done.headers["location"]))
        assert notice(page) == "bob@example.com is now an admin."
        assert (await users.get(user_id=bob.user_id)).role == "admin"

        done = await ada.post_form(f"/_/admin/users/{bob.user_id}", {"disabled": "true"})
        page = assert_page(await ada.http.get(done.headers["location"]))
        assert notice(page).startswith("bob@example.com is disabled")
        assert (await users.get(user_id=bob.user_id)).disabled
        assert await sessions_of(db, bob.user_id) == 0
        assert (await bob.http.get("/_/dashboard")).status_code == 303  # signed out

        done = await ada.post_form(f"/_/admin/users/{bob.user_id}", {"disabled": "false"})
        assert notice(assert_page(await ada.http.get(done.headers["location"]))) == (
            "bob@example.com is enabled again."
        )
        assert not (await users.get(user_id=bob.user_id)).disabled

        assert_page(await ada.post_form("/_/admin/users/999999", {"role": "admin"}), 404)
        assert_page(await ada.post_form(f"/_/admin/users/{bob.user_id}", {"role": "god"}), 422)
        assert_page(await ada.post_form("/_/admin/users/x", {"role": "admin"}), 400)


async def test_the_last_admin_is_kept_with_a_message(app: FastAPI, ada: Browser) -> None:
    for change in ({"role": "member"}, {"disabled": "true"}):
        page = assert_page(await ada.post_form(f"/_/admin/users/{ada.user_id}", change), 409)
        assert "last enabled admin" in notice(page)
        assert "ada@example.com" in page  # the users page, with the message
    me = await users_of(app).get(user_id=ada.user_id)
    assert (me.role, me.disabled) == ("admin", False)


async def test_a_reset_link_is_shown_once_and_opens_the_reset_page(
    app: FastAPI, db: Database, clock: FakeClock, ada: Browser
) -> None:
    bob = await new_user(db, clock, "bob@example.com")
    page = assert_page(await ada.post_form(f"/_/admin/users/{bob}/reset-link"), 201)
    assert "bob@example.com" in page
    url = link_on(page)
    assert url.startswith(f"{BASE_URL}/_/reset/")
    async with client(app) as anon:
        assert "Choose a new password" in assert_page(await anon.get(url.removeprefix(BASE_URL)))
    assert_page(await ada.post_form("/_/admin/users/999999/reset-link"), 404)


async def test_domains_are_added_edited_and_removed_unless_in_use(
    app: FastAPI, db: Database, clock: FakeClock, ada: Browser
) -> None:
    added = {"host": "Go.Example.", "https": "false", "root_redirect": "https://example.com/"}
    done = await ada.post_form("/_/admin/domains", added)
    assert (done.status_code, done.headers["location"]) == (303, "/_/admin/domains?done=added")
    page = assert_page(await ada.http.get(done.headers["location"]))
    assert "The domain is added" in notice(page)
    assert 'href="/_/admin/domains/go.example"' in page
    [domain] = (await domains_of(app).list_()).items
    assert (domain.host, domain.https, domain.root_redirect) == (
        "go.example",
        False,
        "https://example.com/",
    )

    page = assert_page(await ada.post_form("/_/admin/domains", {"host": "go.example"}), 409)
    assert "already" in error_beside(page, "host")
    page = assert_page(await ada.post_form("/_/admin/domains", {"host": "not a host"}), 422)
    assert error_beside(page, "host")
    bad_url = {"host": "other.example", "root_redirect": "ftp://x"}
    page = assert_page(await ada.post_form("/_/admin/domains", bad_url), 422)
    assert error_beside(page, "root_redirect")
    assert len((await domains_of(app).list_()).items) == 1

    edit = assert_page(await ada.http.get("/_/admin/domains/go.example"))
    assert 'value="https://example.com/"' in edit
    changed = {"https": "true", "not_found_redirect": "https://example.com/404"}
    done = await ada.post_form("/_/admin/domains/go.example", changed)
    assert (done.status_code, done.headers["location"]) == (303, "/_/admin/domains?done=changed")
    [domain] = (await domains_of(app).list_()).items
    assert (domain.https, domain.root_redirect, domain.not_found_redirect) == (
        True,
        None,
        "https://example.com/404",
    )
    bad = {"root_redirect": "not a url"}
    page = assert_page(await ada.post_form("/_/admin/domains/go.example", bad), 422)
    assert error_beside(page, "root_redirect")
    assert 'value="not a url"' in page
    assert_page(await ada.http.get("/_/admin/domains/nowhere.example"), 404)

    async with client(app, await new_key(db, clock, ada.user_id, admin=True)) as api:
        made = await api.post(
            "/api/v1/links", json={"url": "https://example.com/", "domain": "go.example"}
        )
        assert made.status_code == 201, made.text
        assert "go.example" in assert_page(await ada.http.get("/_/admin/domains/go.example/remove"))
        page = assert_page(await ada.post_form("/_/admin/domains/go.example/remove"), 409)
        assert "has 1 live links" in notice(page)
        assert len((await domains_of(app).list_()).items) == 1

        deleted = await api.delete(f"/api/v1/links/{made.json()['code']}?domain=go.example")
        assert deleted.status_code == 204, deleted.text
    done = await ada.post_form("/_/admin/domains/go.example/remove")
    assert (done.status_code, done.headers["location"]) == (303, "/_/admin/domains?done=removed")
    assert (await domains_of(app).list_()).items == []


async def test_a_dead_job_shows_its_last_error_and_retry_queues_it(
    app: FastAPI, ada: Browser
) -> None:
    jobs = jobs_of(app)
    job = await dead_job(jobs, "Traceback (most recent call last):\nValueError: <b>no</b> & more")
    page = assert_page(await ada.http.get("/_/admin/jobs"))
    assert "send-report" in page
    assert "ValueError: &lt;b&gt;no&lt;/b&gt; &amp; more</pre>" in page
    assert f'action="/_/admin/jobs/{job.id}/retry"' in page
    assert 'href="/_/admin/jobs?state=dead" aria-current="page"' in page

    done = await ada.post_form(f"/_/admin/jobs/{job.id}/retry")
    assert (done.status_code, done.headers["location"]) == (
        303,
        f"/_/admin/jobs?state=dead&retried={job.id}",
    )
    page = assert_page(await ada.http.get(done.headers["location"]))
    assert notice(page) == f"Job {job.id} (send-report) is queued again, with fresh attempts."
    again = await jobs.get(job.id)
    assert again is not None
    assert (again.state, again.attempts) == (JobState.QUEUED, 0)
    assert "send-report" in assert_page(await ada.http.get("/_/admin/jobs?state=queued"))

    page = assert_page(await ada.post_form(f"/_/admin/jobs/{job.id}/retry"), 409)
    assert "is queued, not dead" in notice(page)
    assert_page(await ada.post_form("/_/admin/jobs/999999/retry"), 404)
    assert_page(await ada.http.get("/_/admin/jobs?state=lost"), 400)


async def test_the_system_page_names_the_database_without_its_password(
    app: FastAPI, db: Database, ada: Browser
) -> None:
    page = assert_page(await ada.http.get("/_/admin/system"))
    assert ("SQLite" if db.is_sqlite else "PostgreSQL") in page
    assert "(current)" in page
    assert "kurz runs embedded" in page
    assert "Click analytics is off" in page
    if not db.is_sqlite:
        password = db.engine.url.password
        assert not password or password not in page


async def test_the_system_page_asks_each_redis_server(
    deployment: Deployment, clock: FakeClock
) -> None:
    settings: Settings = deployment.settings(analytics=True)
    async with running(settings, clock) as app:
        db: Database = app.state.kurz.db
        await dead_job(jobs_of(app), "boom")
        async with browser_of(app, db, clock, "ada@example.com", role="admin") as ada:
            page = assert_page(await ada.http.get("/_/admin/system"))
    assert page.count('<span class="good">yes</span>') == 1 + len(app.state.kurz.redis.urls)
    assert "Queued in this process" in page
    assert '<a href="/_/admin/jobs?state=dead">1</a>' in page
    if deployment.redis_url:
        assert address(deployment.redis_url) in page
        assert "Stream batches not yet read" in page
        for node in deployment.cache_nodes:
            assert address(node) in page


def test_redis_addresses_and_ages_read_as_a_person_reads_them() -> None:
    assert address("redis://:secret@cache.internal:6380/2") == "cache.internal:6380/2"
    assert address("rediss://user:pw@r.example") == "r.example:6379"
    assert address("unix:///run/redis.sock") == "/run/redis.sock"
    assert [age(s) for s in (None, 5, 125, 3_900, 200_000)] == [
        "",
        "5 s",
        "2 min",
        "1 h 5 min",
        "2 d 7 h",
    ]


async def test_admin_forms_without_the_csrf_token_change_nothing(
    app: FastAPI, db: Database, clock: FakeClock, ada: Browser
) -> None:
    bob = await new_user(db, clock, "bob@example.com")
    await domains_of(app).create(DomainCreate(host="go.example"))
    job = await dead_job(jobs_of(app), "boom")
    posts = [
        ("/_/admin/users", {"email": "eve@example.com"}),
        (f"/_/admin/users/{bob}", {"role": "admin"}),
        (f"/_/admin/users/{bob}", {"disabled": "true"}),
        (f"/_/admin/users/{bob}/reset-link", {}),
        ("/_/admin/domains", {"host": "new.example"}),
        ("/_/admin/domains/go.example", {"https": "false"}),
        ("/_/admin/domains/go.example/remove", {}),
        (f"/_/admin/jobs/{job.id}/retry", {}),
    ]
    for path, data in posts:
        assert "CSRF" in assert_page(await ada.post_form(path, data, csrf=False), 403), path
    user = await users_of(app).get(user_id=bob)
    assert (user.role, user.disabled) == ("member", False)
    async with db.read() as conn:
        tokens = await conn.execute(sa.select(sa.func.count()).select_from(one_time_tokens))
        assert tokens.scalar_one() == 0
    [domain] = (await domains_of(app).list_()).items
    assert (domain.host, domain.https) == ("go.example", True)
    assert (await jobs_of(app).get(job.id)).state is JobState.DEAD  # type: ignore[union-attr]
