"""YOURLS's and Kutt's databases imported whole by the import engine, on SQLite and
PostgreSQL: the links made, what is reported, and the clicks carried over into kurz's
rollups."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from kurz.auth.models import Principal
from kurz.bootstrap import Parts
from kurz.db.tables import link_breakdowns_daily, link_clicks_daily, link_clicks_total, links
from kurz.imports import kutt_db, yourls
from kurz.imports.models import ImportRead
from kurz.imports.service import Imports
from kurz.imports.sources import SourceKind
from kurz.links.domain_models import DomainCreate
from tests.integration.imports.others import fill_kutt, fill_yourls, kutt_sqlite, yourls_database
from tests.integration.imports.support import user

Rows = list[tuple[str, str, str | None, str | None]]


@pytest.fixture
def parts(app: FastAPI) -> Parts:
    found = app.state.kurz
    assert isinstance(found, Parts)
    return found


async def imported(
    parts: Parts, alice: Principal, kind: SourceKind, settings: dict[str, Any]
) -> tuple[ImportRead, Rows]:
    """An import by `alice` run to its end, as `kurz import` runs it, and its report."""
    imports_ = Imports(
        db=parts.db,
        jobs=parts.jobs,
        clock=parts.clock,
        links=parts.links,
        outbox=parts.outbox,
        max_bytes=1 << 20,
        # The test databases are on this machine.
        allow_private=True,
        kinds={kind.name: kind},
    )
    started = await imports_.start(
        principal=alice, kind=kind.name, settings=settings, enqueue=False
    )
    done = await imports_.run(started.id)
    report = await imports_.report(started.id, principal=alice, limit=100)
    return done, [(row.place, row.outcome, row.code, row.reason) for row in report.rows]


async def totals(parts: Parts) -> dict[str, int]:
    async with parts.db.read() as conn:
        found = await conn.execute(
            sa.select(links.c.code, link_clicks_total.c.clicks).join(
                link_clicks_total, link_clicks_total.c.link_id == links.c.id
            )
        )
        return {str(code): int(clicks) for code, clicks in found}


async def test_a_yourls_database_imported(parts: Parts, mariadb_url: str) -> None:
    alice = await user(parts.db, parts.clock, "alice@example.com")
    with yourls_database(mariadb_url) as db:
        db.tables()
        fill_yourls(db)
        done, rows = await imported(parts, alice, yourls.KIND, {"database_url": db.url})
        # Imported again: nothing new, no click counted twice.
        again, _ = await imported(parts, alice, yourls.KIND, {"database_url": db.url})
    assert (again.imported, again.skipped, again.clicks) == (0, 4, 0)
    assert (done.status, done.error, done.total, done.read) == ("finished", None, 4, 4)
    assert (done.imported, done.skipped, done.failed) == (4, 0, 0)
    # abc: 5 people's clicks and a bot's; Zed: 3 of no day; mixed: 1 logged, 3 not.
    assert done.clicks == 6 + 3 + 4
    assert rows == [
        ("keyword Zed", "imported", "Zed", None),
        ("keyword abc", "imported", "abc", None),
        ("keyword mixed", "imported", "mixed", None),
        ("keyword none", "imported", "none", None),
    ]
    # People's clicks: abc's bot click is counted apart.
    assert await totals(parts) == {"Zed": 3, "abc": 5, "mixed": 4}
    async with parts.db.read() as conn:
        days = await conn.execute(
            sa.select(link_clicks_daily.c.day, link_clicks_daily.c.clicks,
                      link_clicks_daily.c.bot_clicks)
            .join(links, links.c.id == link_clicks_daily.c.link_id)
            .where(links.c.code == "abc")
            .order_by(link_clicks_daily.c.day)
        )  # fmt: skip
        referrers = await conn.execute(
            sa.select(link_breakdowns_daily.c.day, link_breakdowns_daily.c.value,
                      link_breakdowns_daily.c.clicks)
            .join(links, links.c.id == link_breakdowns_daily.c.link_id)
            .where(links.c.code == "abc", link_breakdowns_daily.c.dimension == "referrer")
            .order_by(link_breakdowns_daily.c.day, link_breakdowns_daily.c.value)
        )  # fmt: skip
        assert [tuple(row) for row in days] == [
            (datetime(2024, 3, 1, tzinfo=UTC), 3, 0),
            (datetime(2024, 3, 2, tzinfo=UTC), 1, 0),
            (datetime(2024, 3, 4, tzinfo=UTC), 1, 1),
        ]
        assert [tuple(row) for row in referrers] == [
            (datetime(2024, 3, 1, tzinfo=UTC), "(direct)", 1),
            (datetime(2024, 3, 1, tzinfo=UTC), "news.example", 2),
            (datetime(2024, 3, 2, tzinfo=UTC), "t.co", 1),
            (datetime(2024, 3, 4, tzinfo=UTC), "(direct)", 1),
        ]


async def test_a_kutt_database_imported(parts: Parts, tmp_path: Path) -> None:
    await parts.domain_admin.create(DomainCreate(host="go.example.org"))
    db = kutt_sqlite(tmp_path / "data")
    await fill_kutt(db)
    alice = await user(parts.db, parts.clock, "alice@example.com")
    done, rows = await imported(parts, alice, kutt_db.KIND, {"database_url": db.url})
    assert (done.status, done.error, done.total, done.read) == ("finished", None, 5, 5)
    assert (done.imported, done.skipped, done.failed) == (3, 0, 2)
    assert [(place, outcome, code) for place, outcome, code, _ in rows] == [
        ("link abc", "imported", "abc"),
        ("link go.example.org/Promo", "imported", "Promo"),
        ("link bad", "failed", None),
        ("link secret", "failed", None),
        ("link old", "imported", "old"),
    ]
    assert rows[2][3] == "banned in Kutt (it shows Kutt's banned page, not its target)"
    assert done.clicks == 7 + 2
    assert await totals(parts) == {"abc": 7, "old": 2}
