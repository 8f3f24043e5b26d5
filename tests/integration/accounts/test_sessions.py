"""kurz.accounts.Sessions on SQLite and PostgreSQL: sessions found, refused and ended,
the purge job, rehashing on sign-in, and a sign-in that loses a race with a password
change."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from kurz.accounts import Cost, Passwords
from kurz.accounts.session_store import hash_id
from kurz.accounts.sessions import Sessions
from kurz.clock import utcnow
from kurz.db import READ_COMMITTED
from kurz.db.tables import sessions as sessions_table
from kurz.db.tables import users
from kurz.errors import Problem
from tests.integration.auth.sessions_support import (
    PASSWORD,
    disable,
    make_user,
    parts_of,
    session_rows,
)
from tests.support import FakeClock

DAY = 86_400.0


@pytest.fixture
def sessions(app: FastAPI) -> Sessions:
    return parts_of(app).sessions


async def test_a_session_is_found_by_its_id_until_it_ends(
    app: FastAPI, sessions: Sessions, clock: FakeClock
) -> None:
    ann = await make_user(app)
    session_id, row = await sessions.start(ann, ip="192.0.2.1", user_agent="test")
    assert row.id_hash == hash_id(session_id)
    assert row.expires_at == utcnow(clock) + timedelta(days=30)
    found = await sessions.find(session_id)
    assert found is not None
    assert (found.user_id, found.email, found.role) == (ann, "ann@example.com", "member")
    assert await sessions.find(session_id + "x") is None
    assert await sessions.find("") is None
    assert await sessions.find("x" * 10_000) is None
    assert await sessions.end(session_id)
    assert not await sessions.end(session_id)
    assert await sessions.find(session_id) is None


async def test_ending_all_of_a_users_sessions_can_spare_one(
    app: FastAPI, sessions: Sessions
) -> None:
    ann, bob = await make_user(app), await make_user(app, "bob@example.com")
    mine = [await sessions.start(ann) for _ in range(3)]
    theirs, _ = await sessions.start(bob)
    kept_id, kept = mine[0]
    assert await sessions.end_all(ann, except_hash=kept.id_hash) == 2
    assert await sessions.find(kept_id) is not None
    assert await sessions.find(mine[1][0]) is None
    assert await sessions.find(theirs) is not None
    assert await sessions.end_all(ann) == 1


@pytest.mark.parametrize("why", ["idle", "absolute", "disabled"])
async def test_an_ended_session_is_refused_and_its_row_deleted(
    app: FastAPI, sessions: Sessions, clock: FakeClock, why: str
) -> None:
    ann = await make_user(app)
    session_id, _ = await sessions.start(ann)
    if why == "idle":
        clock.advance(2 * DAY - 1)
        assert await sessions.find(session_id) is not None  # seen: idle from now
        clock.advance(2 * DAY - 1)
        assert await sessions.find(session_id) is not None
        clock.advance(2 * DAY)
    elif why == "absolute":
        for _ in range(29):
            clock.advance(DAY)
            assert await sessions.find(session_id) is not None
        clock.advance(DAY)
    else:
        await disable(app, ann, at=utcnow(clock))
    assert await session_rows(app) == 1
    assert await sessions.find(session_id) is None
    assert await session_rows(app) == 0


async def test_the_daily_job_purges_the_ended_sessions_nobody_came_back_for(
    app: FastAPI, sessions: Sessions, clock: FakeClock
) -> None:
    registry = parts_of(app).registry
    assert registry.schedules["purge-sessions"].kind == "purge-sessions"
    ann = await make_user(app)
    await sessions.start(ann)
    clock.advance(DAY)
    active, _ = await sessions.start(ann)
    clock.advance(DAY + 1)  # the first is idle past 2 days; the second is not
    await registry.kinds["purge-sessions"].handler({})
    assert await session_rows(app) == 1
    assert await sessions.find(active) is not None
    clock.advance(30 * DAY)
    assert await sessions.purge() == 1
    assert await session_rows(app) == 0


async def test_a_sign_in_rehashes_a_password_hashed_with_other_parameters(
    app: FastAPI, sessions: Sessions
) -> None:
    older = Passwords(Cost(time_cost=2, memory_cost=8, parallelism=1))
    ann = await make_user(app, password=None)
    async with parts_of(app).db.write(READ_COMMITTED) as conn:
        await conn.execute(
            sa.update(users).where(users.c.id == ann).values(password_hash=older.hash(PASSWORD))
        )
    before = sessions.passwords.work
    await sessions.sign_in("ann@example.com", PASSWORD, ip="192.0.2.1")
    assert sessions.passwords.work - before == 2  # the check, and the new hash
    user = await sessions.user(ann)
    assert user is not None
    assert user.password_hash is not None
    assert not sessions.passwords.needs_rehash(user.password_hash)
    assert sessions.passwords.verify(user.password_hash, PASSWORD)
    before = sessions.passwords.work
    await sessions.sign_in("ann@example.com", PASSWORD, ip="192.0.2.1")
    assert sessions.passwords.work - before == 1


async def test_a_sign_in_that_loses_a_race_with_a_password_change_starts_no_session(
    app: FastAPI, sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    ann = await make_user(app)
    verify = sessions.passwords.averify_user

    async def verified_then_changed(stored: str | None, password: str) -> bool:
        # The check passed against the old hash; the change commits before the
        # sign-in's own transaction begins.
        result = await verify(stored, password)
        async with parts_of(app).db.write(READ_COMMITTED) as conn:
            await conn.execute(
                sa.update(users).where(users.c.id == ann).values(password_hash="changed")
            )
        return result

    monkeypatch.setattr(sessions.passwords, "averify_user", verified_then_changed)
    with pytest.raises(Problem) as refused:
        await sessions.sign_in("ann@example.com", PASSWORD, ip="192.0.2.1")
    assert refused.value.slug == "sign-in-failed"
    assert await session_rows(app) == 0


async def test_a_password_change_keeps_only_the_fresh_session(
    app: FastAPI, sessions: Sessions
) -> None:
    ann = await make_user(app)
    old, _ = await sessions.start(ann)
    fresh = await sessions.change_password(
        ann, PASSWORD, "a much better passphrase", ip="192.0.2.1", session_id=old
    )
    assert fresh is not None
    assert await sessions.find(old) is None
    assert await sessions.find(fresh[0]) is not None
    async with parts_of(app).db.read() as conn:
        hashes = (await conn.execute(sa.select(sessions_table.c.id_hash))).scalars().all()
    assert hashes == [fresh[1].id_hash]
