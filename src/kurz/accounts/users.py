"""The users table: finding, creating and changing the people who sign in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kurz.db.tables import users


@dataclass(frozen=True, slots=True)
class User:
    id: int
    email: str
    display_name: str
    role: str
    password_hash: str | None
    disabled_at: datetime | None
    created_at: datetime
    last_seen_at: datetime | None

    @property
    def can_sign_in(self) -> bool:
        return self.password_hash is not None and self.disabled_at is None


_COLUMNS = (
    users.c.id,
    users.c.email,
    users.c.display_name,
    users.c.role,
    users.c.password_hash,
    users.c.disabled_at,
    users.c.created_at,
    users.c.last_seen_at,
)


async def get(conn: AsyncConnection, user_id: int) -> User | None:
    row = (await conn.execute(select(*_COLUMNS).where(users.c.id == user_id))).first()
    return None if row is None else User(**row._asdict())


async def by_email(conn: AsyncConnection, email: str) -> User | None:
    """The user with `email`, which must already be normalised (kurz.accounts.emails)."""
    row = (await conn.execute(select(*_COLUMNS).where(users.c.email == email))).first()
    return None if row is None else User(**row._asdict())


async def list_(
    conn: AsyncConnection,
    *,
    limit: int,
    after: int | None = None,
    role: str | None = None,
    disabled: bool | None = None,
) -> list[User]:
    """Up to `limit` users by id, from after `after`; only `role`'s, only the
    (not) `disabled`, if given."""
    query = select(*_COLUMNS).order_by(users.c.id).limit(limit)
    if after is not None:
        query = query.where(users.c.id > after)
    if role is not None:
        query = query.where(users.c.role == role)
    if disabled is not None:
        query = query.where(
            users.c.disabled_at.is_not(None) if disabled else users.c.disabled_at.is_(None)
        )
    return [User(**row._asdict()) for row in await conn.execute(query)]


async def create(
    conn: AsyncConnection,
    *,
    email: str,
    role: str,
    now: datetime,
    password_hash: str | None = None,
    display_name: str = "",
) -> int:
    """A new user; `email` must be normalised. The unique index refuses a taken one
    (IntegrityError), which is how two racing invitations make one account."""
    user_id: int = (
        await conn.execute(
            insert(users)
            .values(
                email=email,
                display_name=display_name,
                role=role,
                password_hash=password_hash,
                created_at=now,
            )
            .returning(users.c.id)
        )
    ).scalar_one()
    return user_id


async def set_password(conn: AsyncConnection, user_id: int, password_hash: str) -> None:
    await conn.execute(
        update(users).where(users.c.id == user_id).values(password_hash=password_hash)
    )


async def any_admin_can_sign_in(conn: AsyncConnection) -> bool:
    """Whether some admin has a password and is not disabled: if none, `kurz serve`
    offers the first-run setup link."""
    row = (
        await conn.execute(
            select(users.c.id)
            .where(
                users.c.role == "admin",
                users.c.password_hash.is_not(None),
                users.c.disabled_at.is_(None),
            )
            .limit(1)
        )
    ).first()
    return row is not None
