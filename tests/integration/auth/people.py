"""Helpers for the users suites, beside tests.integration.auth.support: people with
passwords, their keys and sessions made straight in the database, and clients over
the app under test."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from kurz.accounts import Passwords, users
from kurz.auth.models import scopes_for
from kurz.clock import utcnow
from kurz.db import READ_COMMITTED, Database
from kurz.db.tables import sessions
from tests.conftest import BASE_URL
from tests.integration.auth import support
from tests.support import FakeClock

PROBLEM = "application/problem+json"
PASSWORD = "correct horse battery staple"


def client(app: FastAPI, secret: str | None = None) -> httpx.AsyncClient:
    """A client of the app (the caller closes it), with an API key if given."""
    headers = {} if secret is None else {"Authorization": f"Bearer {secret}"}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL, headers=headers
    )


async def new_user(
    db: Database,
    clock: FakeClock,
    email: str,
    *,
    role: str = "member",
    passwords: Passwords | None = None,
) -> int:
    """A user (with PASSWORD, if `passwords` is given); their id."""
    user_id = await support.new_user(db, clock, email, role)
    if passwords is not None:
        async with db.write(READ_COMMITTED) as conn:
            await users.set_password(conn, user_id, passwords.hash(PASSWORD))
    return user_id


async def new_key(db: Database, clock: FakeClock, user_id: int, *, admin: bool = False) -> str:
    """An API key of `user_id`'s (an admin's scopes if `admin`); its secret."""
    made = await support.new_key(db, clock, user_id, scopes_for(admin=admin))
    return made.secret


async def new_session(db: Database, clock: FakeClock, user_id: int) -> str:
    """A session row of `user_id`'s, as signing in makes one; the cookie's value."""
    cookie = secrets.token_urlsafe(32)
    now = utcnow(clock)
    async with db.write(READ_COMMITTED) as conn:
        await conn.execute(
            sa.insert(sessions).values(
                id_hash=hashlib.sha256(cookie.encode()).hexdigest(),
                user_id=user_id,
                created_at=now,
                seen_at=now,
                expires_at=now + timedelta(days=30),
            )
        )
    return cookie


async def sessions_of(db: Database, user_id: int) -> int:
    async with db.read() as conn:
        count = await conn.execute(
            sa.select(sa.func.count()).select_from(sessions).where(sessions.c.user_id == user_id)
        )
        return int(count.scalar_one())


def token_of(url: str) -> str:
    """The token at the end of a one-time link."""
    return url.rsplit("/", 1)[1]
