"""One-time links: the first-run setup, invitations and password resets.

The link holds a random token; the table holds its SHA-256 only, so a copy of the
database opens nothing. A token is used by one conditional UPDATE, so that of any
number of concurrent uses exactly one wins, in one process or many.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kurz.db.tables import one_time_tokens

Purpose = Literal["setup", "invite", "reset"]

# The first admin's link is printed on a console anyone near the server may read:
# short. Invitations and resets are passed on by a person, who may take days.
SETUP_TTL = timedelta(hours=1)
INVITE_TTL = timedelta(days=7)
RESET_TTL = timedelta(days=7)
TTLS: dict[Purpose, timedelta] = {"setup": SETUP_TTL, "invite": INVITE_TTL, "reset": RESET_TTL}

# Longer than any token kurz makes (43 characters); anything longer is not one.
_MAX_LENGTH = 128


def hash_token(token: str) -> str:
    # 256 random bits: a fast hash is enough, as for API keys (kurz.auth.queries).
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Token:
    """What a one-time link stands for."""

    purpose: Purpose
    token_hash: str
    # An invitation's address and role; a reset's user.
    email: str | None
    role: str | None
    user_id: int | None
    created_by: int | None
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Issued:
    """A new link's token (shown once, never stored) and when it stops working."""

    token: str
    expires_at: datetime


_COLUMNS = (
    one_time_tokens.c.purpose,
    one_time_tokens.c.token_hash,
    one_time_tokens.c.email,
    one_time_tokens.c.role,
    one_time_tokens.c.user_id,
    one_time_tokens.c.created_by,
    one_time_tokens.c.created_at,
    one_time_tokens.c.expires_at,
)


async def issue(
    conn: AsyncConnection,
    *,
    purpose: Purpose,
    now: datetime,
    ttl: timedelta | None = None,
    email: str | None = None,
    role: str | None = None,
    user_id: int | None = None,
    created_by: int | None = None,
) -> Issued:
    """A new token for `purpose`, valid for `ttl` (TTLS's, by default).

    It replaces the unused tokens it makes pointless, so that a lost link can be made
    harmless by making a new one: any setup token, an invitation to the same address,
    a reset of the same user.
    """
    await _withdraw(conn, purpose=purpose, email=email, user_id=user_id)
    token = secrets.token_urlsafe(32)
    expires_at = now + (ttl or TTLS[purpose])
    await conn.execute(
        insert(one_time_tokens).values(
            token_hash=hash_token(token),
            purpose=purpose,
            email=email,
            role=role,
            user_id=user_id,
            created_by=created_by,
            created_at=now,
            expires_at=expires_at,
        )
    )
    return Issued(token, expires_at)


async def _withdraw(
    conn: AsyncConnection, *, purpose: Purpose, email: str | None, user_id: int | None
) -> None:
    query = delete(one_time_tokens).where(
        one_time_tokens.c.purpose == purpose, one_time_tokens.c.used_at.is_(None)
    )
    if purpose == "invite":
        query = query.where(one_time_tokens.c.email == email)
    elif purpose == "reset":
        query = query.where(one_time_tokens.c.user_id == user_id)
    await conn.execute(query)


def _plausible(token: str) -> bool:
    return 0 < len(token) <= _MAX_LENGTH


async def peek(
    conn: AsyncConnection, *, token: str, purpose: Purpose, now: datetime
) -> Token | None:
    """The live token, left unused: to show its form, or to check it before the slow
    password hash that its use needs. None for an unknown, used or expired one."""
    if not _plausible(token):
        return None
    row = (
        await conn.execute(
            select(*_COLUMNS).where(
                one_time_tokens.c.token_hash == hash_token(token),
                one_time_tokens.c.purpose == purpose,
                one_time_tokens.c.used_at.is_(None),
                one_time_tokens.c.expires_at > now,
            )
        )
    ).first()
    return None if row is None else Token(**row._asdict())


async def redeem(
    conn: AsyncConnection, *, token: str, purpose: Purpose, now: datetime
) -> Token | None:
    """Use the token: what it stood for, or None if it is unknown, used or expired.

    One conditional UPDATE: concurrent uses wait on the row (PostgreSQL) or the write
    lock (SQLite), and all but the first then find it used. The caller's transaction
    decides: if it rolls back, the token is unused again.
    """
    if not _plausible(token):
        return None
    row = (
        await conn.execute(
            update(one_time_tokens)
            .where(
                one_time_tokens.c.token_hash == hash_token(token),
                one_time_tokens.c.purpose == purpose,
                one_time_tokens.c.used_at.is_(None),
                one_time_tokens.c.expires_at > now,
            )
            .values(used_at=now)
            .returning(*_COLUMNS)
        )
    ).first()
    return None if row is None else Token(**row._asdict())


async def pending_invitations(conn: AsyncConnection, *, now: datetime) -> list[Token]:
    """Invitations not yet used nor expired, oldest first."""
    rows = await conn.execute(
        select(*_COLUMNS)
        .where(
            one_time_tokens.c.purpose == "invite",
            one_time_tokens.c.used_at.is_(None),
            one_time_tokens.c.expires_at > now,
        )
        .order_by(one_time_tokens.c.created_at, one_time_tokens.c.token_hash)
    )
    return [Token(**row._asdict()) for row in rows]


async def withdraw_resets(conn: AsyncConnection, *, user_id: int) -> None:
    """Drop `user_id`'s unused reset links (their password was just set)."""
    await _withdraw(conn, purpose="reset", email=None, user_id=user_id)


async def delete_spent(conn: AsyncConnection, *, now: datetime) -> int:
    """Forget the tokens used or past their time; how many. A link whose token is gone
    gets the answer a used or expired one gets (kurz.accounts.problems), so nothing
    needs them once spent."""
    result = await conn.execute(
        delete(one_time_tokens).where(
            (one_time_tokens.c.used_at.is_not(None)) | (one_time_tokens.c.expires_at <= now)
        )
    )
    return result.rowcount
