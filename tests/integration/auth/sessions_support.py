"""Helpers for tests that sign in: users with passwords, and browsers with cookie jars."""

from __future__ import annotations

from datetime import datetime

import httpx
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection

from kurz.accounts import users
from kurz.bootstrap import Parts
from kurz.clock import utcnow
from kurz.db import READ_COMMITTED
from kurz.db.tables import sessions
from kurz.db.tables import users as users_table
from tests.conftest import BASE_URL

PASSWORD = "correct horse battery staple"
LINKS = "/api/v1/links"
SESSION = "/api/v1/session"


def parts_of(app: FastAPI) -> Parts:
    parts = app.state.kurz
    assert isinstance(parts, Parts)
    return parts


async def make_user(
    app: FastAPI,
    email: str = "ann@example.com",
    *,
    password: str | None = PASSWORD,
    role: str = "member",
    disabled_at: datetime | None = None,
) -> int:
    """A user who can sign in with `password` (none: a user who cannot)."""
    parts = parts_of(app)
    stored = None if password is None else parts.passwords.hash(password)
    async with parts.db.write(READ_COMMITTED) as conn:
        user_id = await users.create(
            conn,
            email=email,
            role=role,
            now=utcnow(parts.clock),
            password_hash=stored,
            display_name=email.split("@")[0].title(),
        )
        if disabled_at is not None:
            await disable(app, user_id, at=disabled_at, conn=conn)
    return user_id


async def disable(
    app: FastAPI, user_id: int, *, at: datetime, conn: AsyncConnection | None = None
) -> None:
    """Disable a user behind the API's back (the admin API is another helper's)."""
    query = sa.update(users_table).where(users_table.c.id == user_id).values(disabled_at=at)
    if conn is not None:
        await conn.execute(query)
        return
    async with parts_of(app).db.write(READ_COMMITTED) as own:
        await own.execute(query)


def browser(app: FastAPI, *, base_url: str = BASE_URL, ip: str = "127.0.0.1") -> httpx.AsyncClient:
    """A client that keeps cookies, as a browser does, calling from `ip`."""
    transport = httpx.ASGITransport(app=app, client=(ip, 40_000))
    return httpx.AsyncClient(transport=transport, base_url=base_url)


async def sign_in(
    client: httpx.AsyncClient, email: str = "ann@example.com", password: str = PASSWORD
) -> str:
    """Sign `client` in; the session's CSRF token."""
    response = await client.post(SESSION, json={"email": email, "password": password})
    assert response.status_code == 204, response.text
    return response.headers["x-csrf-token"]


async def count(app: FastAPI, table: sa.Table) -> int:
    async with parts_of(app).db.read() as conn:
        found: int = (
            await conn.execute(sa.select(sa.func.count()).select_from(table))
        ).scalar_one()
    return found


async def session_rows(app: FastAPI) -> int:
    return await count(app, sessions)
