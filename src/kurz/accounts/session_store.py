"""The sessions table: a signed-in browser's row, found by the hash of its cookie's id.

The cookie holds a random 256-bit id; only its SHA-256 is stored, so a copy of the
database holds no session anyone can use (ADR 0016).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kurz.db.tables import sessions, users

# A session's last request, and its user's, is written at most this often: the idle
# lifetime is measured from it, so a session may end up to this much early.
SEEN_EVERY = timedelta(minutes=1)
# token_urlsafe(32) makes 43 characters; anything much longer is no id of kurz's and
# is refused before it costs a query.
MAX_ID_LENGTH = 64
_CSRF_CONTEXT = b"kurz-csrf:"


def new_id() -> str:
    return secrets.token_urlsafe(32)


def hash_id(session_id: str) -> str:
    # 256 random bits need no slow, salted hash: there is nothing to brute-force.
    return hashlib.sha256(session_id.encode()).hexdigest()


def csrf_token(session_id: str) -> str:
    """The CSRF token of a session: derived from its id, so that nothing more is stored.

    A synchronizer token without a table. The id is in an HttpOnly cookie, so no script
    reads it; the token is a one-way hash of it, so a page that learns the token (it is
    sent to the signed-in page) still cannot make the cookie; and a page on another
    site can read neither (the same-origin policy). A forged cross-site request
    therefore carries the cookie, which the browser adds, but never the token. The
    prefix keeps the token apart from the id's other hash, the stored `id_hash`.
    """
    digest = hashlib.sha256(_CSRF_CONTEXT + session_id.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def csrf_matches(session_id: str, token: str | None) -> bool:
    """Whether `token` is the session's CSRF token, compared in constant time."""
    if token is None:
        return False
    return hmac.compare_digest(csrf_token(session_id).encode(), token.encode("utf-8", "replace"))


@dataclass(frozen=True, slots=True)
class Session:
    id_hash: str
    user_id: int
    created_at: datetime
    seen_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class SessionUser:
    """A live session and the user it signs in: what a request made with its cookie
    acts as."""

    id_hash: str
    user_id: int
    email: str
    display_name: str
    role: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Found:
    """A session's row with its user's, live or not: `Sessions.find` judges it."""

    user: SessionUser
    seen_at: datetime
    disabled: bool


async def insert_session(
    conn: AsyncConnection,
    *,
    user_id: int,
    now: datetime,
    expires_at: datetime,
    ip: str | None,
    user_agent: str | None,
) -> tuple[str, Session]:
    """A new session for `user_id`: its id (for the cookie, never stored) and its row."""
    session_id = new_id()
    row = Session(hash_id(session_id), user_id, now, now, expires_at)
    await conn.execute(
        insert(sessions).values(
            id_hash=row.id_hash,
            user_id=user_id,
            created_at=now,
            seen_at=now,
            expires_at=expires_at,
            ip=None if ip is None else ip[:64],
            user_agent=None if user_agent is None else user_agent[:200],
        )
    )
    return session_id, row


async def lookup(conn: AsyncConnection, id_hash: str) -> Found | None:
    row = (
        await conn.execute(
            select(
                sessions.c.id_hash,
                sessions.c.user_id,
                sessions.c.created_at,
                sessions.c.seen_at,
                sessions.c.expires_at,
                users.c.email,
                users.c.display_name,
                users.c.role,
                users.c.disabled_at,
            )
            .join(users, users.c.id == sessions.c.user_id)
            .where(sessions.c.id_hash == id_hash)
        )
    ).first()
    if row is None:
        return None
    user = SessionUser(
        id_hash=row.id_hash,
        user_id=row.user_id,
        email=row.email,
        display_name=row.display_name,
        role=row.role,
        created_at=row.created_at,
        expires_at=row.expires_at,
    )
    return Found(user, row.seen_at, row.disabled_at is not None)


async def touch(conn: AsyncConnection, *, id_hash: str, user_id: int, now: datetime) -> None:
    """Note a request of the session and of its user, unless noted within SEEN_EVERY."""
    await conn.execute(
        update(sessions)
        .where(sessions.c.id_hash == id_hash, sessions.c.seen_at <= now - SEEN_EVERY)
        .values(seen_at=now)
    )
    await conn.execute(
        update(users)
        .where(
            users.c.id == user_id,
            or_(users.c.last_seen_at.is_(None), users.c.last_seen_at <= now - SEEN_EVERY),
        )
        .values(last_seen_at=now)
    )


async def delete_session(conn: AsyncConnection, id_hash: str) -> int | None:
    """End one session; its user's id, or None when there was no such session."""
    user_id: int | None = (
        await conn.execute(
            delete(sessions).where(sessions.c.id_hash == id_hash).returning(sessions.c.user_id)
        )
    ).scalar()
    return user_id


async def delete_for_user(
    conn: AsyncConnection, user_id: int, *, except_hash: str | None = None
) -> int:
    """End every session of `user_id` (but `except_hash`); how many there were."""
    query = delete(sessions).where(sessions.c.user_id == user_id)
    if except_hash is not None:
        query = query.where(sessions.c.id_hash != except_hash)
    return (await conn.execute(query)).rowcount


async def delete_ended(conn: AsyncConnection, *, now: datetime, idle: timedelta) -> int:
    """Forget the sessions past their absolute or idle lifetime; how many."""
    result = await conn.execute(
        delete(sessions).where(or_(sessions.c.expires_at <= now, sessions.c.seen_at <= now - idle))
    )
    return result.rowcount
