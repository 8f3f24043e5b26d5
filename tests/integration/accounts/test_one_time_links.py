"""Spent one-time links are forgotten by a daily job, and a forgotten link is refused
exactly as a used or expired one is. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from kurz.accounts import tokens
from kurz.accounts.service import Users
from kurz.clock import utcnow
from kurz.db import READ_COMMITTED
from kurz.db.tables import one_time_tokens
from kurz.errors import Problem
from tests.support import FakeClock


async def test_the_daily_job_forgets_used_and_expired_links_only(
    app: FastAPI, clock: FakeClock
) -> None:
    parts = app.state.kurz
    service: Users = parts.users
    registry = parts.registry
    assert registry.schedules["purge-one-time-links"].kind == "purge-one-time-links"
    async with parts.db.write(READ_COMMITTED) as conn:
        now = utcnow(clock)
        used = await tokens.issue(conn, purpose="invite", now=now, email="a@example.com",
                                  role="member")  # fmt: skip
        old = await tokens.issue(conn, purpose="invite", now=now, email="b@example.com",
                                 role="member")  # fmt: skip
        assert await tokens.redeem(conn, token=used.token, purpose="invite", now=now)
    clock.advance(timedelta(days=6).total_seconds())
    async with parts.db.write(READ_COMMITTED) as conn:
        pending = await tokens.issue(conn, purpose="invite", now=utcnow(clock),
                                     email="c@example.com", role="member")  # fmt: skip
    clock.advance(timedelta(days=1, seconds=1).total_seconds())  # `old` is 7 days old now

    refusals = {}
    for token in (used.token, old.token):
        with pytest.raises(Problem) as refused:
            await service.check(token=token, purpose="invite", ip=None)
        refusals[token] = (refused.value.status, refused.value.slug)

    await registry.kinds["purge-one-time-links"].handler({})
    async with parts.db.read() as conn:
        left = (await conn.execute(sa.select(one_time_tokens.c.email))).scalars().all()
    assert left == ["c@example.com"]
    assert (await service.check(token=pending.token, purpose="invite", ip=None)).email == (
        "c@example.com"
    )
    # Forgotten, each is refused as it was before.
    for token, before in refusals.items():
        with pytest.raises(Problem) as refused:
            await service.check(token=token, purpose="invite", ip=None)
        assert (refused.value.status, refused.value.slug) == before == (410, "link-expired")
