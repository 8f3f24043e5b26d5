"""Creating, listing, revoking and checking API keys."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kurz.auth.models import (
    MEMBER_SCOPES,
    ROLE_SCOPES,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    Principal,
    Role,
    format_scopes,
    in_order,
    parse_scopes,
)
from kurz.db.tables import api_keys, users

# Marks kurz keys in configs and logs (and for secret scanners); not itself secret.
SECRET_PREFIX = "kurz_"  # noqa: S105
_SHOWN_PREFIX_LENGTH = 12
# A key's last-used time is written at most this often.
LAST_USED_EVERY = timedelta(minutes=1)


def hash_secret(secret: str) -> str:
    # The secrets are 256 random bits, so a fast hash is enough: there is nothing
    # for a slow, salted hash to protect against that brute force could reach.
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


async def _user_of_its_own(*, conn: AsyncConnection, key_in: ApiKeyCreate, now: datetime) -> int:
    """A new user for a key made without one (`kurz keys create` without --user).

    No password (it cannot sign in), the role the key's scopes need, and an
    address named after the key (key-<id>@keys.invalid), set once the key has its id.
    """
    values = {
        "email": f"key-new-{uuid.uuid4().hex}@keys.invalid",
        "display_name": key_in.name,
        # The role that allows the key's scopes (`proxy` and `metrics:read` are admin's).
        "role": "member" if set(key_in.scopes) <= MEMBER_SCOPES else "admin",
        "created_at": now,
    }
    user_id: int = (
        await conn.execute(insert(users).values(values).returning(users.c.id))
    ).scalar_one()
    return user_id


async def create(
    *, conn: AsyncConnection, key_in: ApiKeyCreate, now: datetime, user_id: int | None = None
) -> ApiKeyCreated:
    """Create a key for `user_id` (the caller checks that its scopes are within the
    user's role), or, without one, for a user of its own (see _user_of_its_own)."""
    own_user = user_id is None
    if user_id is None:
        user_id = await _user_of_its_own(conn=conn, key_in=key_in, now=now)
    secret = new_secret()
    prefix = secret[:_SHOWN_PREFIX_LENGTH]
    scopes = format_scopes(set(key_in.scopes))
    values = {
        "user_id": user_id,
        "name": key_in.name,
        "scopes": scopes,
        "prefix": prefix,
        "secret_hash": hash_secret(secret),
        "created_at": now,
        "expires_at": key_in.expires_at,
    }
    key_id = (
        await conn.execute(insert(api_keys).values(values).returning(api_keys.c.id))
    ).scalar_one()
    if own_user:
        await conn.execute(
            update(users).where(users.c.id == user_id).values(email=f"key-{key_id}@keys.invalid")
        )
    return ApiKeyCreated(
        id=key_id,
        name=key_in.name,
        user=user_id,
        scopes=in_order(parse_scopes(scopes)),
        prefix=prefix,
        created_at=now,
        expires_at=key_in.expires_at,
        last_used_at=None,
        revoked_at=None,
        secret=secret,
    )


_READ = (
    api_keys.c.id,
    api_keys.c.name,
    api_keys.c.user_id,
    api_keys.c.scopes,
    api_keys.c.prefix,
    api_keys.c.created_at,
    api_keys.c.expires_at,
    api_keys.c.last_used_at,
    api_keys.c.revoked_at,
)


def _read(row: object) -> ApiKeyRead:
    values = row._asdict()  # type: ignore[attr-defined]
    values["user"] = values.pop("user_id")
    values["scopes"] = in_order(parse_scopes(values["scopes"]))
    return ApiKeyRead.model_validate(values)


async def list_(*, conn: AsyncConnection, user_id: int | None = None) -> list[ApiKeyRead]:
    """Every key, or `user_id`'s, oldest first."""
    query = select(*_READ).order_by(api_keys.c.id)
    if user_id is not None:
        query = query.where(api_keys.c.user_id == user_id)
    return [_read(row) for row in await conn.execute(query)]


async def get(*, conn: AsyncConnection, key_id: int) -> ApiKeyRead | None:
    row = (await conn.execute(select(*_READ).where(api_keys.c.id == key_id))).first()
    return None if row is None else _read(row)


async def revoke(
    *, conn: AsyncConnection, key_id: int, now: datetime, user_id: int | None = None
) -> bool:
    """Revoke a key (of `user_id`, if given); False when there is no such key.
    Revoking twice keeps the first time."""
    mine: list[ColumnElement[bool]] = [api_keys.c.id == key_id]
    if user_id is not None:
        mine.append(api_keys.c.user_id == user_id)
    if await revoke_once(conn=conn, key_id=key_id, now=now, user_id=user_id):
        return True
    exists = await conn.execute(select(api_keys.c.id).where(*mine))
    return exists.first() is not None


async def revoke_once(
    *, conn: AsyncConnection, key_id: int, now: datetime, user_id: int | None = None
) -> bool:
    """Revoke a live key (of `user_id`, if given); True only for the call that did,
    so that the audit log records a revocation once however often it is asked for."""
    mine: list[ColumnElement[bool]] = [api_keys.c.id == key_id]
    if user_id is not None:
        mine.append(api_keys.c.user_id == user_id)
    result = await conn.execute(
        update(api_keys)
        .where(*mine, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now)
        .returning(api_keys.c.id)
    )
    return result.first() is not None


async def user_emails(*, conn: AsyncConnection, user_ids: Collection[int]) -> dict[int, str]:
    """The email of each of `user_ids` (for `kurz keys list`)."""
    if not user_ids:
        return {}
    rows = await conn.execute(
        select(users.c.id, users.c.email).where(users.c.id.in_(sorted(set(user_ids))))
    )
    return {row.id: row.email for row in rows}


@dataclass(frozen=True, slots=True)
class KeyCheck:
    """What a secret turned out to be: a principal, or why not."""

    principal: Principal | None
    # Why there is no principal: "unknown" (no such key, or revoked), "expired",
    # "disabled" (its user is).
    refused: str | None = None
    # Until when the principal may be trusted without asking again (its key's expiry).
    expires_at: datetime | None = None


async def authenticate(*, conn: AsyncConnection, secret: str, now: datetime) -> KeyCheck:
    if not secret.startswith(SECRET_PREFIX) or len(secret) > 128:
        return KeyCheck(None, "unknown")
    row = (
        await conn.execute(
            select(
                api_keys.c.id,
                api_keys.c.user_id,
                api_keys.c.name,
                api_keys.c.scopes,
                api_keys.c.expires_at,
                users.c.role,
                users.c.disabled_at,
            )
            .join(users, users.c.id == api_keys.c.user_id)
            .where(
                api_keys.c.secret_hash == hash_secret(secret),
                api_keys.c.revoked_at.is_(None),
            )
        )
    ).first()
    if row is None:
        return KeyCheck(None, "unknown")
    if row.disabled_at is not None:
        return KeyCheck(None, "disabled")
    if row.expires_at is not None and row.expires_at <= now:
        return KeyCheck(None, "expired")
    role: Role = row.role
    principal = Principal(
        user_id=row.user_id,
        role=role,
        # A key never has more than its user: a demoted admin's keys lose admin at once.
        scopes=parse_scopes(row.scopes) & ROLE_SCOPES[role],
        name=row.name,
        key_id=row.id,
    )
    return KeyCheck(principal, expires_at=row.expires_at)


async def touch(*, conn: AsyncConnection, key_id: int, now: datetime) -> None:
    """Note that a key was used, unless that was noted less than a minute ago."""
    await conn.execute(
        update(api_keys)
        .where(
            api_keys.c.id == key_id,
            or_(
                api_keys.c.last_used_at.is_(None),
                api_keys.c.last_used_at <= now - LAST_USED_EVERY,
            ),
        )
        .values(last_used_at=now)
    )
