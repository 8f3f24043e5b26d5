"""API keys as their users manage them: the use cases behind /api/v1/keys and `kurz keys`.

A key never has more than the one who makes it: its scopes stay within its user's
role, and a key made through another key within that key's scopes. A member sees
and revokes only their own keys; another user's, or another user named, is a 404,
never a 403. `by=None` is the server's operator (`kurz keys`), who may do anything.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from sqlalchemy.ext.asyncio import AsyncConnection

from kurz.accounts import audit, emails, users
from kurz.auth import queries
from kurz.auth.models import (
    ROLE_SCOPES,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    Principal,
    Scope,
    in_order,
)
from kurz.clock import utcnow
from kurz.db import READ_COMMITTED, Database
from kurz.errors import Problem, invalid, not_found
from kurz.types import Clock


def user_not_found(detail: str) -> Problem:
    return Problem(404, "user-not-found", "User Not Found", detail)


def _no_user(user: int) -> Problem:
    return user_not_found(f"No user {user}, or not one the caller manages.")


def key_not_found(key_id: int | str) -> Problem:
    return not_found(f"No API key '{key_id}', or not the caller's.")


def scope_exceeds_role(scopes: Iterable[Scope], role: str) -> Problem:
    names = in_order(set(scopes))
    return Problem(
        403,
        "scope-exceeds-role",
        "Scope Exceeds Role",
        f"The role `{role}` does not allow {_listed(names)}: a key never has more than its user.",
        extensions={"scopes": names},
    )


def scope_exceeds_key(scopes: Iterable[Scope]) -> Problem:
    names = in_order(set(scopes))
    return Problem(
        403,
        "scope-exceeds-key",
        "Scope Exceeds Key",
        f"The key this call was made with lacks {_listed(names)}: through a key, only "
        "keys within its own scopes can be made or revoked.",
        extensions={"scopes": names},
    )


def _listed(names: list[Scope]) -> str:
    return ", ".join(f"`{name}`" for name in names)


class Keys:
    """Making, listing and revoking API keys, each change written to the audit log in
    its own transaction."""

    def __init__(self, *, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def create(
        self, *, key_in: ApiKeyCreate, by: Principal | None, ip: str | None = None
    ) -> ApiKeyCreated:
        """A key for `key_in.user` (the caller, when absent); its secret is in the
        answer and nowhere else. The operator naming no user makes one of its own."""
        now = utcnow(self.clock)
        if key_in.expires_at is not None and key_in.expires_at <= now:
            raise invalid("expires_at", "must be in the future")
        async with self.db.write(READ_COMMITTED) as conn:
            if by is None and key_in.user is None:
                created = await queries.create(conn=conn, key_in=key_in, now=now)
            else:
                user = await self._user(conn, by, key_in.user)
                scopes = set(key_in.scopes)
                _within(scopes, ROLE_SCOPES[user.role], role=user.role)
                if by is not None:
                    _within(scopes, by.scopes, role=by.role if by.key_id is None else None)
                created = await queries.create(conn=conn, key_in=key_in, now=now, user_id=user.id)
            await audit.record(
                conn,
                event="key-created",
                at=now,
                actor_user_id=None if by is None else by.user_id,
                actor_key_id=None if by is None else by.key_id,
                user_id=created.user,
                ip=ip,
                detail={"key": created.id, "name": created.name, "scopes": created.scopes},
            )
        return created

    async def list_(self, *, by: Principal | None, user: int | None = None) -> list[ApiKeyRead]:
        """The caller's keys; an admin's (and the operator's): everyone's, or `user`'s."""
        async with self.db.read() as conn:
            if by is not None and not by.is_admin:
                user = (await self._user(conn, by, user)).id
            elif user is not None and await users.get(conn, user) is None:
                raise _no_user(user)
            return await queries.list_(conn=conn, user_id=user)

    async def get(self, *, key_id: int, by: Principal) -> ApiKeyRead:
        async with self.db.read() as conn:
            key = await queries.get(conn=conn, key_id=key_id)
        if key is None or not _sees(by, key):
            raise key_not_found(key_id)
        return key

    async def revoke(self, *, key_id: int, by: Principal | None, ip: str | None = None) -> None:
        """Revoke a key: from the next request on, in every process that does not keep
        checked keys (KURZ_AUTH_CACHE_TTL). Revoking a revoked key changes nothing."""
        now = utcnow(self.clock)
        async with self.db.write(READ_COMMITTED) as conn:
            key = await queries.get(conn=conn, key_id=key_id)
            if key is None or not (by is None or _sees(by, key)):
                raise key_not_found(key_id)
            if by is not None and by.key_id is not None and key.id != by.key_id:
                owner = await users.get(conn, key.user)
                can = set(key.scopes) & (ROLE_SCOPES[owner.role] if owner else set())
                _within(can, by.scopes, role=None)
            if not await queries.revoke_once(conn=conn, key_id=key_id, now=now):
                return
            await audit.record(
                conn,
                event="key-revoked",
                at=now,
                actor_user_id=None if by is None else by.user_id,
                actor_key_id=None if by is None else by.key_id,
                user_id=key.user,
                ip=ip,
                detail={"key": key.id, "name": key.name},
            )

    async def user_named(self, email: str) -> int:
        """The id of the user with `email` (`kurz keys --user`)."""
        try:
            address = emails.normalise(email)
        except ValueError as exc:
            raise invalid("user", str(exc)) from None
        async with self.db.read() as conn:
            user = await users.by_email(conn, address)
        if user is None:
            raise user_not_found(f"No user has the email {address}.")
        return user.id

    async def emails(self, user_ids: Collection[int]) -> dict[int, str]:
        """Each user's email, by id (`kurz keys list`)."""
        async with self.db.read() as conn:
            return await queries.user_emails(conn=conn, user_ids=user_ids)

    @staticmethod
    async def _user(conn: AsyncConnection, by: Principal | None, user: int | None) -> users.User:
        """The user a call names (the caller, when it names none), if the caller may
        manage their keys; a member naming anyone else learns nothing of them."""
        if by is not None:
            if user is None:
                user = by.user_id
            elif user != by.user_id and not by.is_admin:
                raise _no_user(user)
        assert user is not None
        found = await users.get(conn, user)
        if found is None:
            raise _no_user(user)
        return found


def _sees(by: Principal, key: ApiKeyRead) -> bool:
    return by.is_admin or key.user == by.user_id


def _within(scopes: Collection[Scope], allowed: Collection[Scope], *, role: str | None) -> None:
    """Nothing, if `scopes` are all `allowed`; else the 403 naming the rest: beyond a
    role, or (role None) beyond the key the call was made with."""
    beyond = set(scopes) - set(allowed)
    if beyond:
        raise scope_exceeds_key(beyond) if role is None else scope_exceeds_role(beyond, role)
