"""The users use cases: what an admin does to accounts over the API, and what a one-time
link lets its holder do. No HTTP: they return results or raise Problems.

Every change writes its audit event in its own transaction (kurz.accounts.audit).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from kurz.accounts import audit, emails, tokens, users
from kurz.accounts.models import (
    InvitationAccept,
    InvitationCreated,
    InvitationRead,
    LinksFate,
    PasswordReset,
    ResetLink,
    Role,
    SetupCreate,
    UserInvite,
    UserPagination,
    UserRead,
    UserUpdate,
)
from kurz.accounts.passwords import Passwords
from kurz.accounts.problems import (
    cannot_delete_self,
    check_fate,
    email_taken,
    last_admin,
    link_expired,
)
from kurz.accounts.tokens import Purpose, Token
from kurz.accounts.users import User
from kurz.clock import utcnow
from kurz.db import READ_COMMITTED, Database
from kurz.errors import Problem, invalid, not_found, validation_problem
from kurz.limits import ServiceLimits, too_many_requests
from kurz.types import Clock

_ADMIN_EXISTS = "An admin can sign in already: the setup link is no longer needed."
# Where each one-time link is opened (kurz.web serves the pages).
PAGES: dict[Purpose, str] = {"setup": "/_/setup/", "invite": "/_/invite/", "reset": "/_/reset/"}


class LinkCache(Protocol):
    """The caches that may hold a link, told when one is deleted (kurz.links.cache.Targets)."""

    async def changed_link(self, domain_id: int, code: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Actor:
    """Who makes a change, for the audit log: a user (with the key they used), from where."""

    user_id: int | None = None
    key_id: int | None = None
    ip: str | None = None


def _read(user: User) -> UserRead:
    return UserRead(
        id=user.id,
        email=user.email,
        display_name=user.display_name,
        role=user.role,  # type: ignore[arg-type]
        disabled=user.disabled_at is not None,
        disabled_at=user.disabled_at,
        has_password=user.password_hash is not None,
        created_at=user.created_at,
        last_seen_at=user.last_seen_at,
    )


def _no_user(user_id: int) -> Problem:
    return not_found(f"No user with id {user_id}.")


async def _existing(conn: AsyncConnection, user_id: int) -> User:
    user = await users.get(conn, user_id)
    if user is None:
        raise _no_user(user_id)
    return user


async def _keep_an_admin(conn: AsyncConnection, user_id: int) -> None:
    """Refuse to take `user_id` out of the enabled admins if it is the last of them;
    two admins demoting each other at once leave one (users.enabled_admins locks)."""
    if await users.enabled_admins(conn) == [user_id]:
        raise last_admin()


class Users:
    """Users, invitations, password resets and the first admin, over the parts they need."""

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        passwords: Passwords,
        base_url: str,
        limits: ServiceLimits | None = None,
        cache: LinkCache | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.passwords = passwords
        self.base_url = base_url
        # Failed token attempts count against the client's `auth-fail` limit.
        self.limits = limits
        # Told of the links deleted with a user; None where nothing caches links (the CLI).
        self.cache = cache

    def url(self, purpose: Purpose, token: str) -> str:
        return f"{self.base_url}{PAGES[purpose]}{token}"

    async def _audit(self, conn: AsyncConnection, event: str, actor: Actor, **more: Any) -> None:
        await audit.record(
            conn,
            event=event,
            at=utcnow(self.clock),
            actor_user_id=actor.user_id,
            actor_key_id=actor.key_id,
            ip=actor.ip,
            **more,
        )

    # Reading.

    async def get(self, *, user_id: int) -> UserRead:
        async with self.db.read() as conn:
            return _read(await _existing(conn, user_id))

    async def by_email(self, *, email: str) -> UserRead:
        """The user with `email`, as typed (it is normalised here)."""
        try:
            address = emails.normalise(email)
        except ValueError as exc:
            raise invalid("email", str(exc)) from None
        async with self.db.read() as conn:
            user = await users.by_email(conn, address)
        if user is None:
            raise not_found(f"No user with the email address {address}.")
        return _read(user)

    async def list_(
        self,
        *,
        limit: int,
        cursor: str | None = None,
        role: Role | None = None,
        disabled: bool | None = None,
    ) -> UserPagination:
        """A page of users, oldest first; `cursor` is the last id of the page before."""
        after = None
        if cursor is not None:
            if not cursor.isdigit() or len(cursor) > 18:
                raise invalid("cursor", "Not a cursor from this listing.", location="query")
            after = int(cursor)
        async with self.db.read() as conn:
            found = await users.list_(
                conn, limit=limit + 1, after=after, role=role, disabled=disabled
            )
        page = [_read(user) for user in found[:limit]]
        more = len(found) > limit
        return UserPagination(items=page, next_cursor=str(page[-1].id) if more else None)

    async def invitations(self) -> list[InvitationRead]:
        """The invitations not yet used nor expired, oldest first."""
        async with self.db.read() as conn:
            found = await tokens.pending_invitations(conn, now=utcnow(self.clock))
        return [
            InvitationRead(
                email=token.email or "",
                role=token.role,  # type: ignore[arg-type]
                invited_by=token.created_by,
                created_at=token.created_at,
                expires_at=token.expires_at,
            )
            for token in found
        ]

    # An admin's changes.

    async def invite(self, *, invite: UserInvite, actor: Actor) -> InvitationCreated:
        """A one-time link for `invite.email` to make their account with; an earlier
        unused invitation to the same address stops working."""
        now = utcnow(self.clock)
        async with self.db.write(READ_COMMITTED) as conn:
            if await users.by_email(conn, invite.email) is not None:
                raise email_taken(invite.email)
            issued = await tokens.issue(
                conn,
                purpose="invite",
                now=now,
                email=invite.email,
                role=invite.role,
                created_by=actor.user_id,
            )
            detail = {"email": invite.email, "role": invite.role}
            await self._audit(conn, "user-invited", actor, detail=detail)
        return InvitationCreated(
            email=invite.email,
            role=invite.role,
            invited_by=actor.user_id,
            created_at=now,
            invitation_url=self.url("invite", issued.token),
            invitation_expires_at=issued.expires_at,
        )

    async def reset_link(self, *, user_id: int, actor: Actor) -> ResetLink:
        """A one-time link for the user to choose a new password with (it also gives a
        password to a user who has none); an earlier unused one stops working."""
        async with self.db.write(READ_COMMITTED) as conn:
            await _existing(conn, user_id)
            issued = await tokens.issue(
                conn, purpose="reset", now=utcnow(self.clock), user_id=user_id,
                created_by=actor.user_id,
            )  # fmt: skip
            await self._audit(conn, "reset-link-made", actor, user_id=user_id)
        return ResetLink(reset_url=self.url("reset", issued.token), expires_at=issued.expires_at)

    async def update(self, *, user_id: int, change: UserUpdate, actor: Actor) -> UserRead:
        """Change a user's role, name, or whether they are disabled. Disabling ends their
        sessions at once; their keys are refused from the next request on (each key
        check joins the user's row)."""
        now = utcnow(self.clock)
        async with self.db.write(READ_COMMITTED) as conn:
            if change.role == "member" or change.disabled:
                await _keep_an_admin(conn, user_id)
            user = await _existing(conn, user_id)
            values: dict[str, Any] = {}
            if change.role is not None and change.role != user.role:
                values["role"] = change.role
                detail = {"from": user.role, "to": change.role}
                await self._audit(conn, "role-changed", actor, user_id=user_id, detail=detail)
            if change.disabled is not None and change.disabled != (user.disabled_at is not None):
                values["disabled_at"] = now if change.disabled else None
                event = "user-disabled" if change.disabled else "user-enabled"
                await self._audit(conn, event, actor, user_id=user_id)
                if change.disabled:
                    await users.end_sessions(conn, user_id)
            if change.display_name is not None and change.display_name != user.display_name:
                values["display_name"] = change.display_name
                detail = {"from": user.display_name, "to": change.display_name}
                await self._audit(conn, "user-renamed", actor, user_id=user_id, detail=detail)
            if values:
                await users.change(conn, user_id, values)
            return _read(await _existing(conn, user_id))

    async def delete(
        self, *, user_id: int, links_fate: LinksFate | None, to: int | None, actor: Actor
    ) -> None:
        """Delete a user, with their keys, sessions and one-time links; their links go
        to user `to` (`reassign`) or are deleted (`delete`), as the caller chose."""
        check_fate(user_id, links_fate, to)
        if actor.user_id == user_id:
            raise cannot_delete_self()
        now = utcnow(self.clock)
        async with self.db.write(READ_COMMITTED) as conn:
            await _keep_an_admin(conn, user_id)
            user = await _existing(conn, user_id)
            if to is not None and await users.get(conn, to) is None:
                raise invalid("to", f"No user with id {to}.", location="query")
            # With `delete`, the acting admin keeps the tombstones (users.remove says why).
            heir = to if to is not None else actor.user_id
            assert heir is not None
            removed = await users.remove(
                conn,
                user_id=user_id,
                heir_id=heir,
                delete_links=links_fate == "delete",
                now=now,
                by_user=actor.user_id,
                by_key=actor.key_id,
            )
            detail = {
                "email": user.email,
                "links": links_fate,
                "to": to,
                "links_deleted": len(removed.deleted_codes),
                "links_moved": removed.links_moved,
                "keys_deleted": removed.keys_deleted,
            }
            await self._audit(conn, "user-deleted", actor, user_id=user_id, detail=detail)
        if self.cache is not None:
            for domain_id, code in removed.deleted_codes:
                await self.cache.changed_link(domain_id, code)

    # What a one-time link lets its holder do.

    async def _refused(self, ip: str | None) -> Problem:
        """The answer to a token that is no good, counted against the client's address
        (`auth-fail`), as a wrong API key is."""
        limits = self.limits
        if limits is not None and ip is not None:
            decision = await limits.check(limits.auth_fail, ip)
            if decision is not None and not decision.allowed:
                return too_many_requests(decision)
        return link_expired()

    async def check(self, *, token: str, purpose: Purpose, ip: str | None) -> Token:
        """The live token, unused: for a page to show its form. Counts a bad one."""
        async with self.db.read() as conn:
            found = await tokens.peek(conn, token=token, purpose=purpose, now=utcnow(self.clock))
            spent = (
                purpose == "setup" and found is not None and await users.any_admin_can_sign_in(conn)
            )
        if found is None:
            raise await self._refused(ip)
        if spent:
            raise link_expired(_ADMIN_EXISTS)
        return found

    async def _with_token(
        self,
        token: str,
        purpose: Purpose,
        password: str,
        ip: str | None,
        work: Callable[[AsyncConnection, Token, str], Coroutine[Any, Any, int]],
    ) -> int:
        """Run `work` with the token used and the password hashed, in one transaction.

        The token is looked at first, so that a bad one costs no password hash (Argon2
        is slow on purpose, and these routes take no credentials). The hash is made
        outside the transaction, which would otherwise hold SQLite's write lock
        meanwhile. Of concurrent uses, the conditional UPDATE lets one through; the rest
        find it used.
        """
        await self.check(token=token, purpose=purpose, ip=ip)
        password_hash = await self.passwords.ahash(password)
        async with self.db.write(READ_COMMITTED) as conn:
            used = await tokens.redeem(conn, token=token, purpose=purpose, now=utcnow(self.clock))
            if used is None:
                raise link_expired()
            return await work(conn, used, password_hash)

    async def _create(
        self,
        conn: AsyncConnection,
        *,
        email: str,
        role: str,
        password_hash: str,
        display_name: str,
    ) -> int:
        try:
            return await users.create(
                conn,
                email=email,
                role=role,
                now=utcnow(self.clock),
                password_hash=password_hash,
                display_name=display_name,
            )
        except IntegrityError:
            # The unique email index: the address got an account meanwhile (a racing
            # accept of another invitation to it, or `kurz users create`). The caller's
            # transaction rolls back with this Problem, its token unused.
            raise email_taken(email) from None

    async def accept(self, *, token: str, accept: InvitationAccept, ip: str | None) -> UserRead:
        """The invited person's account, made with the password they chose."""

        async def join(conn: AsyncConnection, invitation: Token, password_hash: str) -> int:
            assert invitation.email is not None
            assert invitation.role is not None
            user_id = await self._create(
                conn,
                email=invitation.email,
                role=invitation.role,
                password_hash=password_hash,
                display_name=accept.display_name,
            )
            actor = Actor(user_id=user_id, ip=ip)
            detail = {"invited_by": invitation.created_by, "role": invitation.role}
            await self._audit(conn, "user-joined", actor, user_id=user_id, detail=detail)
            return user_id

        user_id = await self._with_token(token, "invite", accept.password, ip, join)
        return await self.get(user_id=user_id)

    async def reset(self, *, token: str, reset: PasswordReset, ip: str | None) -> None:
        """The user's new password; every session they had ends."""

        async def set_password(conn: AsyncConnection, link: Token, password_hash: str) -> int:
            assert link.user_id is not None
            await users.set_password(conn, link.user_id, password_hash)
            await users.end_sessions(conn, link.user_id)
            await tokens.withdraw_resets(conn, user_id=link.user_id)
            actor = Actor(user_id=link.user_id, ip=ip)
            detail = {"link_made_by": link.created_by}
            await self._audit(conn, "password-reset", actor, user_id=link.user_id, detail=detail)
            return link.user_id

        await self._with_token(token, "reset", reset.password, ip, set_password)

    async def setup(self, *, token: str, admin: SetupCreate, ip: str | None) -> UserRead:
        """The first admin, through the first-run setup link: only while no admin can
        sign in (`kurz serve` printed the link because none could)."""

        async def make_admin(conn: AsyncConnection, _link: Token, password_hash: str) -> int:
            if await users.any_admin_can_sign_in(conn):
                raise link_expired(_ADMIN_EXISTS)
            user_id = await self._create(
                conn,
                email=admin.email,
                role="admin",
                password_hash=password_hash,
                display_name=admin.display_name,
            )
            actor = Actor(user_id=user_id, ip=ip)
            await self._audit(conn, "setup", actor, user_id=user_id, detail={"via": "link"})
            return user_id

        user_id = await self._with_token(token, "setup", admin.password, ip, make_admin)
        return await self.get(user_id=user_id)

    # From a shell on the server (`kurz users create`, `kurz serve`'s first run).

    async def create(
        self,
        *,
        email: str,
        password: str,
        role: Role = "member",
        display_name: str = "",
        event: str = "user-created",
        actor: Actor | None = None,
    ) -> UserRead:
        """A user with a password; `email` as typed. 422 for a bad address, password or
        name, as the API's."""
        try:
            new = SetupCreate(email=email, password=password, display_name=display_name)
        except ValidationError as exc:
            raise validation_problem(exc.errors()) from None
        password_hash = await self.passwords.ahash(password)
        async with self.db.write(READ_COMMITTED) as conn:
            user_id = await self._create(
                conn,
                email=new.email,
                role=role,
                password_hash=password_hash,
                display_name=new.display_name,
            )
            detail = {"role": role}
            await self._audit(conn, event, actor or Actor(), user_id=user_id, detail=detail)
        return await self.get(user_id=user_id)

    async def needs_setup(self) -> bool:
        """Whether no admin can sign in yet (the sign-in page then points at setup)."""
        async with self.db.read() as conn:
            return not await users.any_admin_can_sign_in(conn)

    async def setup_link(self) -> str | None:
        """A new first-run setup link (older ones stop working), or None when an admin
        can sign in already and none is needed."""
        async with self.db.write(READ_COMMITTED) as conn:
            if await users.any_admin_can_sign_in(conn):
                return None
            issued = await tokens.issue(conn, purpose="setup", now=utcnow(self.clock))
        return self.url("setup", issued.token)

    async def purge_spent_links(self) -> int:
        """Forget the one-time links used or expired; how many (a daily job)."""
        async with self.db.write(READ_COMMITTED) as conn:
            return await tokens.delete_spent(conn, now=utcnow(self.clock))
