"""The first admin: made at start from KURZ_INITIAL_ADMIN_EMAIL and
KURZ_INITIAL_ADMIN_PASSWORD_FILE (for containers), or else through the one-time setup
link `kurz serve` prints while no admin can sign in (docs/accounts.md, First run)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kurz.accounts import emails, users
from kurz.accounts.passwords import check_new
from kurz.accounts.service import Actor, Users
from kurz.errors import Problem


class SetupError(Exception):
    """A first-run setting that cannot work; the message tells the operator what to fix."""


@dataclass(frozen=True, slots=True)
class FirstRun:
    """What the first run did."""

    # A new setup link, to print: no admin can sign in.
    setup_url: str | None = None
    # The initial admin made now.
    created: str | None = None
    # The initial admin's address, which had an account already: left as it is.
    kept: str | None = None


def read_password(path: str) -> str:
    """The password in the file at `path` (a Docker or Kubernetes secret): its first
    line, as secrets are often written with a line break after them."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise SetupError(
            f"KURZ_INITIAL_ADMIN_PASSWORD_FILE: cannot read {path}: {reason}"
        ) from None
    password = text.splitlines()[0] if text else ""
    try:
        check_new(password)
    except ValueError as exc:
        raise SetupError(f"KURZ_INITIAL_ADMIN_PASSWORD_FILE: {exc}") from None
    return password


async def first_run(users_: Users, *, email: str = "", password_file: str = "") -> FirstRun:
    """Make the initial admin if asked to and none can sign in; else, if still no admin
    can sign in, a setup link.

    Safe at every start: an account with the initial admin's address is left alone
    (its password is not reset from the file), and once an admin can sign in the
    settings are not looked at again, so a deleted initial admin is not made again.
    """
    if bool(email) != bool(password_file):
        raise SetupError(
            "set both KURZ_INITIAL_ADMIN_EMAIL and KURZ_INITIAL_ADMIN_PASSWORD_FILE, or neither"
        )
    kept = None
    if email:
        try:
            address = emails.normalise(email)
        except ValueError as exc:
            raise SetupError(f"KURZ_INITIAL_ADMIN_EMAIL: {exc}") from None
        async with users_.db.read() as conn:
            existing = await users.by_email(conn, address)
            needed = not await users.any_admin_can_sign_in(conn)
        if existing is not None:
            kept = address
        elif needed:
            password = read_password(password_file)
            try:
                await users_.create(
                    email=address, password=password, role="admin", event="setup", actor=Actor()
                )
            except Problem as problem:
                if problem.slug != "email-taken":
                    raise SetupError(f"KURZ_INITIAL_ADMIN_EMAIL: {problem.detail}") from None
                # Another process starting at the same time made it.
                return FirstRun(kept=address)
            return FirstRun(created=address)
    return FirstRun(setup_url=await users_.setup_link(), kept=kept)
