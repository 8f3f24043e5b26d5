"""The users table: finding, creating and changing the people who sign in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, delete, insert, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from kurz.db.owners import lock_owners
from kurz.db.tables import (
    api_keys,
    link_clicks_total,
    links,
    one_time_tokens,
    owner_clicks_daily,
    sessions,
    users,
)


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


async def change(conn: AsyncConnection, user_id: int, values: dict[str, Any]) -> None:
    await conn.execute(update(users).where(users.c.id == user_id).values(values))


async def enabled_admins(conn: AsyncConnection) -> list[int]:
    """The enabled admins, their rows locked until the transaction ends (FOR UPDATE;
    SQLite's writer holds the whole database anyway): a change that would leave none
    waits for another in flight, then reads what it did."""
    found = await conn.execute(
        select(users.c.id)
        .where(users.c.role == "admin", users.c.disabled_at.is_(None))
        .order_by(users.c.id)
        .with_for_update()
    )
    return list(found.scalars())


async def end_sessions(conn: AsyncConnection, user_id: int) -> None:
    await conn.execute(delete(sessions).where(sessions.c.user_id == user_id))


@dataclass(frozen=True, slots=True)
class Removed:
    """What went with a deleted user."""

    # The links deleted with them, as (domain id, code), for the caches to forget.
    deleted_codes: list[tuple[int, str]]
    # Their link rows given to the heir, tombstones included.
    links_moved: int
    keys_deleted: int


async def remove(
    conn: AsyncConnection,
    *,
    user_id: int,
    heir_id: int,
    delete_links: bool,
    now: datetime,
    by_user: int | None,
    by_key: int | None,
) -> Removed:
    """Delete a user with their keys, sessions and one-time links; their links are
    deleted first if `delete_links`, and every link row then goes to `heir_id`, its
    clicks kept per owner with it (_move_clicks)."""
    # Before any link moves: no batch of clicks sums by owner meanwhile (kurz.db.owners).
    await lock_owners(conn, exclusive=True)
    codes: list[tuple[int, str]] = []
    if delete_links:
        found = await conn.execute(
            update(links)
            .where(links.c.user_id == user_id, links.c.deleted_at.is_(None))
            .values(
                deleted_at=now,
                updated_at=now,
                updated_by_user_id=by_user,
                updated_by_key_id=by_key,
                version=links.c.version + 1,
            )
            .returning(links.c.domain_id, links.c.code)
        )
        codes = [(row.domain_id, row.code) for row in found]
    # Tombstones go to the heir too: a deleted link's row is what keeps its code from
    # being handed out again, so it must outlive its user, and links.user_id must name
    # someone (no listing shows a tombstone, so the heir never sees them).
    moved = await conn.execute(
        update(links).where(links.c.user_id == user_id).values(user_id=heir_id)
    )
    await _move_clicks(conn, user_id=user_id, heir_id=heir_id, keep=not delete_links)
    # api_keys.user_id must name someone too; links keep the ids of the keys that made
    # them, which are not foreign keys.
    keys = await conn.execute(delete(api_keys).where(api_keys.c.user_id == user_id))
    await end_sessions(conn, user_id)
    await conn.execute(delete(one_time_tokens).where(one_time_tokens.c.user_id == user_id))
    await conn.execute(delete(users).where(users.c.id == user_id))
    return Removed(codes, moved.rowcount, keys.rowcount)


async def _move_clicks(conn: AsyncConnection, *, user_id: int, heir_id: int, keep: bool) -> None:
    """The per-owner click rollups follow the links: each link's total goes to the
    heir, and the user's clicks by day are added to the heir's if `keep` (the heir
    takes the links over), else dropped (they went with the user, with their links)."""
    owned = owner_clicks_daily.c
    if keep:
        counts = (owned.clicks, owned.bot_clicks, owned.uniques)
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        add = dialect.insert(owner_clicks_daily).from_select(
            [owned.user_id, owned.day, *counts],
            select(literal(heir_id, BigInteger), owned.day, *counts)
            .where(owned.user_id == user_id)
            .order_by(owned.day),
        )
        await conn.execute(
            add.on_conflict_do_update(
                index_elements=[owned.user_id, owned.day],
                set_={c.name: c + add.excluded[c.name] for c in counts},
            )
        )
    await conn.execute(delete(owner_clicks_daily).where(owned.user_id == user_id))
    await conn.execute(
        update(link_clicks_total)
        .where(link_clicks_total.c.user_id == user_id)
        .values(user_id=heir_id)
    )
