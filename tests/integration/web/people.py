"""Signed-in browsers for the web app's page tests: a client holding a session cookie,
and the CSRF token its forms carry."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from fastapi import FastAPI

from kurz.accounts.session_store import csrf_token
from kurz.auth.cookies import CSRF_FIELD, cookie_name
from kurz.db import Database
from kurz.web.render import CSP
from tests.integration.auth.people import client, new_session, new_user
from tests.support import FakeClock


@dataclass(frozen=True, slots=True)
class Browser:
    """A signed-in user's browser: `http` sends the session cookie."""

    http: httpx.AsyncClient
    user_id: int
    csrf: str

    async def post_form(
        self, path: str, data: Mapping[str, str | list[str]] | None = None, *, csrf: bool = True
    ) -> httpx.Response:
        """Post `data` as a form would, with the session's CSRF token unless `csrf` is False."""
        fields: dict[str, str | list[str]] = dict(data or {})
        if csrf:
            fields[CSRF_FIELD] = self.csrf
        return await self.http.post(path, data=fields)


@asynccontextmanager
async def browser_of(
    app: FastAPI, db: Database, clock: FakeClock, email: str, *, role: str = "member"
) -> AsyncIterator[Browser]:
    """A new user `email` with `role`, signed in."""
    user_id = await new_user(db, clock, email, role=role)
    session_id = await new_session(db, clock, user_id)
    async with client(app) as http:
        http.cookies.set(cookie_name(app.state.kurz.settings), session_id)
        yield Browser(http, user_id, csrf_token(session_id))


def assert_page(response: httpx.Response, status: int = 200) -> str:
    """An HTML page of the web app, with its security headers and no inline script; its text."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"
    assert re.search(r'<script(?![^>]* src="/_/static/)', response.text) is None
    return response.text


def error_beside(page: str, field: str) -> str:
    """The error shown for `field` (`<p class="error" id="FIELD-error">`); fails if none."""
    found = re.search(rf'<p class="error" id="{re.escape(field)}-error">([^<]*)</p>', page)
    assert found is not None, page
    return found.group(1)
