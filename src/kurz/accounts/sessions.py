"""Signed-in browsers: starting, finding and ending sessions, and the sign-in, password
change and sign-out everywhere that start and end them (ADR 0016, docs/accounts.md).

Speaks no HTTP: the routes and the cookie are kurz.auth's (kurz.auth.cookies).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from kurz.accounts import audit, users
from kurz.accounts.emails import normalise
from kurz.accounts.passwords import Passwords, check_new
from kurz.accounts.session_store import (
    MAX_ID_LENGTH,
    SEEN_EVERY,
    Session,
    SessionUser,
    delete_ended,
    delete_for_user,
    delete_session,
    hash_id,
    insert_session,
    lookup,
    touch,
)
from kurz.clock import utcnow
from kurz.db import READ_COMMITTED, Database
from kurz.db.tables import users as users_table
from kurz.errors import Problem, invalid
from kurz.limits import ServiceLimits, too_many_requests
from kurz.types import Clock

# How much of the email a failed sign-in gave the audit log keeps.
_AUDITED_EMAIL = 100


def sign_in_failed() -> Problem:
    # One answer for every cause, so that it tells nobody which addresses have accounts.
    return Problem(
        401,
        "sign-in-failed",
        "Sign-in Failed",
        "The email or password is wrong, or the account cannot sign in.",
    )


def wrong_password() -> Problem:
    return invalid("current_password", "This is not the account's current password.")


class Sessions:
    """Browser sessions in the database, and the password checks that start them.

    A session ends at `absolute_ttl` after its sign-in whatever happens, and after
    `idle_ttl` without a request. Failed password checks are limited per client IP
    (`limits.signin_ip`) and per account (`limits.signin_account`); only failures
    spend those budgets, so a user who types the password right is never slowed.
    """

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        passwords: Passwords,
        limits: ServiceLimits,
        idle_ttl: float,
        absolute_ttl: float,
    ) -> None:
        self.db = db
        self.clock = clock
        self.passwords = passwords
        self.limits = limits
        self.idle = timedelta(seconds=idle_ttl)
        self.absolute = timedelta(seconds=absolute_ttl)

    # Sessions.

    async def start(
        self, user_id: int, *, ip: str | None = None, user_agent: str | None = None
    ) -> tuple[str, Session]:
        """A new session for `user_id`: the id for the cookie, and its row."""
        async with self.db.write(READ_COMMITTED) as conn:
            return await self._start(conn, user_id, ip, user_agent)

    async def _start(
        self, conn: AsyncConnection, user_id: int, ip: str | None, user_agent: str | None
    ) -> tuple[str, Session]:
        now = utcnow(self.clock)
        return await insert_session(
            conn,
            user_id=user_id,
            now=now,
            expires_at=now + self.absolute,
            ip=ip,
            user_agent=user_agent,
        )

    async def find(self, session_id: str) -> SessionUser | None:
        """The live session behind a cookie's id, with its user; None when there is none.

        A session past either lifetime, or whose user is disabled, is refused and its
        row deleted. A live one's last request is written at most once a minute.
        """
        if not session_id or len(session_id) > MAX_ID_LENGTH:
            return None
        id_hash = hash_id(session_id)
        now = utcnow(self.clock)
        async with self.db.read() as conn:
            found = await lookup(conn, id_hash)
        if found is None:
            return None
        session = found.user
        if found.disabled or session.expires_at <= now or found.seen_at + self.idle <= now:
            async with self.db.write(READ_COMMITTED) as conn:
                await delete_session(conn, id_hash)
            return None
        if now - found.seen_at >= SEEN_EVERY:
            async with self.db.write(READ_COMMITTED) as conn:
                await touch(conn, id_hash=id_hash, user_id=session.user_id, now=now)
        return session

    async def end(self, session_id: str) -> bool:
        """End one session; whether there was one."""
        async with self.db.write(READ_COMMITTED) as conn:
            return await delete_session(conn, hash_id(session_id)) is not None

    async def end_all(self, user_id: int, *, except_hash: str | None = None) -> int:
        """End every session of `user_id` but the one hashed `except_hash`; how many."""
        async with self.db.write(READ_COMMITTED) as conn:
            return await delete_for_user(conn, user_id, except_hash=except_hash)

    async def purge(self) -> int:
        """Forget the ended sessions that no request came to delete; how many."""
        async with self.db.write(READ_COMMITTED) as conn:
            return await delete_ended(conn, now=utcnow(self.clock), idle=self.idle)

    async def user(self, user_id: int) -> users.User | None:
        """The user a key or a session acts for (GET /api/v1/me)."""
        async with self.db.read() as conn:
            return await users.get(conn, user_id)

    # Signing in and out.

    async def sign_in(
        self,
        email: str,
        password: str,
        *,
        ip: str,
        user_agent: str | None = None,
        replacing: str | None = None,
    ) -> tuple[str, Session]:
        """A new session for the account of `email`, if `password` is its password.

        `replacing` is the session id the client sent, if any: it is ended, so that
        an id planted before the sign-in (session fixation) never becomes signed in.
        Raises the 401 `sign-in-failed` for every failure alike, after the same Argon2
        work, or a 429 without any when a limit is used up.
        """
        try:
            address: str | None = normalise(email)
        except ValueError:
            address = None
        # A malformed address is limited too, by what was typed.
        account = address or email.strip().lower()[:_AUDITED_EMAIL]
        await self._not_blocked(ip, account)
        user = None
        if address is not None:
            async with self.db.read() as conn:
                user = await users.by_email(conn, address)
        stored = None if user is None or user.disabled_at is not None else user.password_hash
        # No user, no password or a disabled user: averify_user(None) hashes as long.
        verified = await self.passwords.averify_user(stored, password)
        if user is None or stored is None or not verified:
            await self._failed(ip, account, email=email, user_id=None if user is None else user.id)
            raise sign_in_failed()
        rehashed = None
        if self.passwords.needs_rehash(stored):
            rehashed = await self.passwords.ahash(password)
        now = utcnow(self.clock)
        async with self.db.write(READ_COMMITTED) as conn:
            if not await _hold(conn, user.id, stored, now=now, new_hash=rehashed):
                raise sign_in_failed()
            if replacing:
                await delete_session(conn, hash_id(replacing))
            started = await self._start(conn, user.id, ip, user_agent)
            await audit.record(
                conn, event="signin", at=now, actor_user_id=user.id, user_id=user.id, ip=ip
            )
        return started

    async def sign_out(self, session_id: str, *, ip: str | None = None) -> None:
        """End the session the client signed in with."""
        now = utcnow(self.clock)
        async with self.db.write(READ_COMMITTED) as conn:
            user_id = await delete_session(conn, hash_id(session_id))
            if user_id is not None:
                await audit.record(
                    conn, event="signout", at=now, actor_user_id=user_id, user_id=user_id, ip=ip
                )

    async def change_password(
        self,
        user_id: int,
        current: str,
        new: str,
        *,
        ip: str,
        user_agent: str | None = None,
        session_id: str | None = None,
        actor_key_id: int | None = None,
    ) -> tuple[str, Session] | None:
        """Set a new password, if `current` is the user's, and end every session of theirs.

        Called with a session (`session_id`), the client gets a fresh one in return;
        with a key (`actor_key_id`), None. A wrong `current` is a 422 on its field, and
        counts against the sign-in limits as a failed sign-in does.
        """
        try:
            check_new(new)
        except ValueError as exc:
            raise invalid("new_password", str(exc)) from None
        async with self.db.read() as conn:
            user = await users.get(conn, user_id)
        account = f"user:{user_id}" if user is None else user.email
        await self._not_blocked(ip, account)
        stored = None if user is None else user.password_hash
        verified = await self.passwords.averify_user(stored, current)
        if stored is None or not verified:
            await self._spend(ip, account)
            raise wrong_password()
        new_hash = await self.passwords.ahash(new)
        now = utcnow(self.clock)
        async with self.db.write(READ_COMMITTED) as conn:
            # The user's row first: a sign-in racing this one either committed its
            # session before (deleted next) or finds the password changed (_hold).
            if not await _hold(conn, user_id, stored, now=None, new_hash=new_hash):
                raise wrong_password()
            await delete_for_user(conn, user_id)
            fresh = None
            if session_id is not None:
                fresh = await self._start(conn, user_id, ip, user_agent)
            await audit.record(
                conn,
                event="password-changed",
                at=now,
                actor_user_id=user_id,
                actor_key_id=actor_key_id,
                user_id=user_id,
                ip=ip,
            )
        return fresh

    async def end_everywhere(
        self, user_id: int, *, ip: str | None = None, actor_key_id: int | None = None
    ) -> int:
        """Sign `user_id` out of every session, the caller's own included; how many."""
        now = utcnow(self.clock)
        async with self.db.write(READ_COMMITTED) as conn:
            ended = await delete_for_user(conn, user_id)
            await audit.record(
                conn,
                event="signout-everywhere",
                at=now,
                actor_user_id=user_id,
                actor_key_id=actor_key_id,
                user_id=user_id,
                ip=ip,
                detail={"sessions": ended},
            )
        return ended

    # The sign-in limits.

    async def _not_blocked(self, ip: str, account: str) -> None:
        """The 429 when failures used up the IP's or the account's budget, before any
        hashing: a blocked guess costs kurz nothing."""
        limits = self.limits
        for policy, key in ((limits.signin_ip, ip), (limits.signin_account, account)):
            decision = await limits.peek(policy, key)
            if decision is not None and not decision.allowed:
                raise too_many_requests(decision)

    async def _spend(self, ip: str, account: str) -> None:
        limits = self.limits
        await limits.check(limits.signin_ip, ip)
        await limits.check(limits.signin_account, account)

    async def _failed(self, ip: str, account: str, *, email: str, user_id: int | None) -> None:
        await self._spend(ip, account)
        async with self.db.write(READ_COMMITTED) as conn:
            await audit.record(
                conn,
                event="signin-failed",
                at=utcnow(self.clock),
                user_id=user_id,
                ip=ip,
                detail={"email": email[:_AUDITED_EMAIL]},
            )


async def _hold(
    conn: AsyncConnection,
    user_id: int,
    password_hash: str,
    *,
    now: datetime | None,
    new_hash: str | None,
) -> bool:
    """Lock the user's row for this transaction, if it still has `password_hash` and is
    not disabled, writing `new_hash` (and the last-seen time `now`) if given.

    The UPDATE takes the row lock that a concurrent password change or disabling also
    takes, and PostgreSQL re-reads its condition after waiting for one: a sign-in
    checked against the old password fails rather than leave a session behind it.
    """
    values: dict[str, object] = {}
    if now is not None:
        values["last_seen_at"] = now
    values["password_hash"] = password_hash if new_hash is None else new_hash
    result = await conn.execute(
        update(users_table)
        .where(
            users_table.c.id == user_id,
            users_table.c.password_hash == password_hash,
            users_table.c.disabled_at.is_(None),
        )
        .values(values)
        .returning(users_table.c.id)
    )
    return result.first() is not None
