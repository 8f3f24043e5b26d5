"""Creating, listing, revoking and checking API keys."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kurz.auth.models import ApiKeyCreate, ApiKeyCreated, ApiKeyRead, Principal
from kurz.db.tables import api_keys, users

# Marks kurz keys in configs and logs (and for secret scanners); not itself secret.
SECRET_PREFIX = "kurz_"  # noqa: S105
_SHOWN_PREFIX_LENGTH = 12


def hash_secret(secret: str) -> str:
    # The secrets are 256 random bits, so a fast hash is enough: there is nothing
    # for a slow, salted hash to protect against that brute force could reach.
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


async def _user_of_its_own(*, conn: AsyncConnection, key_in: ApiKeyCreate, now: datetime) -> int:
    """A new user for a new key, so that the key sees what a key saw before users.

    Until keys are made for a chosen user (issue 20), each has a user of its own, as
    migration 0010 gave every key before it: no password (it cannot sign in), and an
    address named after the key (key-<id>@keys.invalid), set once the key has its id.
    """
    values = {
        "email": f"key-new-{uuid.uuid4().hex}@keys.invalid",
        "display_name": key_in.name,
        "role": "admin" if key_in.is_admin else "member",
        "created_at": now,
    }
    user_id: int = (
        await conn.execute(insert(users).values(values).returning(users.c.id))
    ).scalar_one()
    return user_id


async def create(*, conn: AsyncConnection, key_in: ApiKeyCreate, now: datetime) -> ApiKeyCreated:
    """Create a key, and the user it acts for (see _user_of_its_own)."""
    user_id = await _user_of_its_own(conn=conn, key_in=key_in, now=now)
    secret = new_secret()
    prefix = secret[:_SHOWN_PREFIX_LENGTH]
    values = {
        "user_id": user_id,
        "name": key_in.name,
        "is_admin": key_in.is_admin,
        "is_proxy": key_in.is_proxy,
        "prefix": prefix,
        "secret_hash": hash_secret(secret),
        "created_at": now,
    }
    key_id = (
        await conn.execute(insert(api_keys).values(values).returning(api_keys.c.id))
    ).scalar_one()
    await conn.execute(
        update(users).where(users.c.id == user_id).values(email=f"key-{key_id}@keys.invalid")
    )
    return ApiKeyCreated(
        id=key_id,
        name=key_in.name,
        is_admin=key_in.is_admin,
        is_proxy=key_in.is_proxy,
        prefix=prefix,
        created_at=now,
        revoked_at=None,
        secret=secret,
    )


async def list_(*, conn: AsyncConnection) -> list[ApiKeyRead]:
    rows = await conn.execute(
        select(
            api_keys.c.id,
            api_keys.c.name,
            api_keys.c.is_admin,
            api_keys.c.is_proxy,
            api_keys.c.prefix,
            api_keys.c.created_at,
            api_keys.c.revoked_at,
        ).order_by(api_keys.c.id)
    )
    return [ApiKeyRead.model_validate(row._asdict()) for row in rows]


async def revoke(*, conn: AsyncConnection, key_id: int, now: datetime) -> bool:
    """Revoke a key; False when no such key exists. Revoking twice keeps the first time."""
    result = await conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now)
        .returning(api_keys.c.id)
    )
    if result.first() is not None:
        return True
    exists = await conn.execute(select(api_keys.c.id).where(api_keys.c.id == key_id))
    return exists.first() is not None


async def authenticate(*, conn: AsyncConnection, secret: str) -> Principal | None:
    if not secret.startswith(SECRET_PREFIX) or len(secret) > 128:
        return None
    row = (
        await conn.execute(
            select(
                api_keys.c.id,
                api_keys.c.user_id,
                api_keys.c.name,
                api_keys.c.is_admin,
                api_keys.c.is_proxy,
            ).where(
                api_keys.c.secret_hash == hash_secret(secret),
                api_keys.c.revoked_at.is_(None),
            )
        )
    ).first()
    if row is None:
        return None
    return Principal(
        key_id=row.id,
        user_id=row.user_id,
        name=row.name,
        is_admin=row.is_admin,
        is_proxy=row.is_proxy,
    )
