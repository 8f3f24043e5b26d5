"""The first run: a setup link while no admin can sign in, or the initial admin from
KURZ_INITIAL_ADMIN_* made once, with a clear SetupError for settings that cannot work.
On SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from kurz.accounts import Passwords
from kurz.accounts import users as user_rows
from kurz.accounts.firstrun import FirstRun, SetupError, first_run
from kurz.accounts.service import Users
from kurz.db import Database
from kurz.db.tables import audit_events, users
from tests.integration.auth.people import PASSWORD, new_user
from tests.support import FakeClock


@pytest.fixture
def service(app: FastAPI) -> Users:
    users_: Users = app.state.kurz.users
    return users_


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "admin-password"
    # As a secret is often written: with a line break after it.
    path.write_text(PASSWORD + "\n")
    return path


async def user_count(db: Database) -> int:
    async with db.read() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(users)) or 0)


async def test_while_no_admin_can_sign_in_a_setup_link_is_made(
    app: FastAPI, db: Database, clock: FakeClock, service: Users
) -> None:
    # An admin without a password (made for an API key) cannot sign in.
    await new_user(db, clock, "key-1@keys.invalid", role="admin")
    done = await first_run(service)
    assert done.setup_url is not None
    assert done.setup_url.startswith("https://kurz.test/_/setup/")
    passwords: Passwords = app.state.kurz.passwords
    await new_user(db, clock, "root@example.com", role="admin", passwords=passwords)
    assert await first_run(service) == FirstRun()


async def test_the_initial_admin_is_made_once(
    app: FastAPI, db: Database, service: Users, secret: Path
) -> None:
    settings = {"email": " Ops@Example.com ", "password_file": str(secret)}
    assert await first_run(service, **settings) == FirstRun(created="ops@example.com")
    async with db.read() as conn:
        admin = await user_rows.by_email(conn, "ops@example.com")
        event = await conn.scalar(sa.select(audit_events.c.event))
    assert admin is not None
    assert admin.role == "admin"
    assert admin.password_hash is not None
    passwords: Passwords = app.state.kurz.passwords
    assert passwords.verify(admin.password_hash, PASSWORD)
    assert event == "setup"
    # A restart: the account is left alone (its password is not reset from the file).
    secret.write_text("another password entirely")  # noqa: ASYNC240
    assert await first_run(service, **settings) == FirstRun(kept="ops@example.com")
    async with db.read() as conn:
        again = await user_rows.by_email(conn, "ops@example.com")
    assert again == admin
    assert await user_count(db) == 1


async def test_an_existing_account_with_the_initial_address_is_left_alone(
    db: Database, clock: FakeClock, service: Users, secret: Path
) -> None:
    await new_user(db, clock, "ops@example.com")
    done = await first_run(service, email="ops@example.com", password_file=str(secret))
    assert done.kept == "ops@example.com"
    assert done.created is None
    # Still no admin can sign in: the setup link is the way in.
    assert done.setup_url is not None
    async with db.read() as conn:
        member = await user_rows.by_email(conn, "ops@example.com")
    assert member is not None
    assert (member.role, member.password_hash) == ("member", None)


async def test_once_an_admin_can_sign_in_the_initial_admin_is_not_made(
    app: FastAPI, db: Database, clock: FakeClock, service: Users
) -> None:
    passwords: Passwords = app.state.kurz.passwords
    await new_user(db, clock, "root@example.com", role="admin", passwords=passwords)
    # Not even read: the file may be gone by then.
    done = await first_run(service, email="ops@example.com", password_file="/nonexistent")
    assert done == FirstRun()
    assert await user_count(db) == 1


@pytest.mark.parametrize(
    ("email", "password", "says"),
    [
        ("ops@example.com", None, "cannot read"),
        ("ops@example.com", "", "at least 8 characters"),
        ("ops@example.com", "short\nlonger second line", "at least 8 characters"),
        ("not an address", PASSWORD, "KURZ_INITIAL_ADMIN_EMAIL"),
        ("ops@example.com", "-", "set both"),
        ("", PASSWORD, "set both"),
    ],
)
async def test_settings_that_cannot_work_say_why(
    db: Database, service: Users, tmp_path: Path, email: str, password: str | None, says: str
) -> None:
    path = tmp_path / "password"
    if password is not None and password != "-":
        path.write_text(password)
    password_file = "" if password == "-" else str(path)
    with pytest.raises(SetupError, match=says):
        await first_run(service, email=email, password_file=password_file)
    assert await user_count(db) == 0


async def test_an_unreadable_password_file_says_so(
    db: Database, service: Users, tmp_path: Path
) -> None:
    (tmp_path / "folder").mkdir()
    with pytest.raises(SetupError, match="KURZ_INITIAL_ADMIN_PASSWORD_FILE: cannot read"):
        await first_run(service, email="ops@example.com", password_file=str(tmp_path / "folder"))
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8")
    with pytest.raises(SetupError, match="cannot read"):
        await first_run(service, email="ops@example.com", password_file=str(binary))
