"""The import engine over a source that reads from a list, on SQLite and PostgreSQL:
what it makes, what it reports, running again, taken aliases, statistics, and going on
after a run that stopped between pages."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from kurz.bootstrap import Parts
from kurz.db import READ_COMMITTED
from kurz.db.tables import (
    imports,
    link_breakdowns_daily,
    link_clicks_daily,
    link_clicks_hourly,
    link_clicks_total,
    link_sources,
    links,
    owner_clicks_daily,
)
from kurz.errors import Problem
from kurz.imports.service import Imports, _Overtaken
from kurz.imports.sources import (
    Clicks,
    DayBreakdown,
    DayClicks,
    HourClicks,
    Item,
    OnConflict,
    Record,
    SourceKind,
    Unreadable,
)
from kurz.jobs import Worker
from tests.integration.imports.support import Listed, listed_kind, user

CREATED = datetime(2020, 5, 17, 8, 30, tzinfo=UTC)


@pytest.fixture
def parts(app: FastAPI) -> Parts:
    found = app.state.kurz
    assert isinstance(found, Parts)
    return found


def engine(parts: Parts, pages: list[list[Item]], **more: Any) -> Imports:
    """The parts' Imports, reading only the listed source."""
    return Imports(
        db=parts.db,
        jobs=parts.jobs,
        clock=parts.clock,
        links=parts.links,
        outbox=parts.outbox,
        max_bytes=1 << 20,
        allow_private=False,
        kinds={"listed": listed_kind(pages, **more)},
    )


def record(n: int, **fields: Any) -> Record:
    return Record(
        place=f"row {n}",
        source_id=f"id-{n}",
        url=fields.pop("url", f"https://example.com/{n}"),
        **fields,
    )


async def stored_links(parts: Parts) -> list[tuple[Any, ...]]:
    async with parts.db.read() as conn:
        found = await conn.execute(
            sa.select(links.c.code, links.c.url, links.c.og_title, links.c.created_at).order_by(
                links.c.id
            )
        )
        return [tuple(row) for row in found]


async def report(imports_: Imports, import_id: int, principal: Any) -> list[tuple[Any, ...]]:
    found = await imports_.report(import_id, principal=principal, limit=1000)
    return [(row.n, row.outcome, row.code, row.reason) for row in found.rows]


async def test_an_import_makes_each_link_and_reports_each_row(parts: Parts) -> None:
    alice = await user(parts.db, parts.clock, "alice@example.com")
    pages: list[list[Item]] = [
        [
            record(1, alias="first", title="The first", tags=("a", "b"), created_at=CREATED),
            Unreadable("row 2", "the row has 3 fields, the header 4"),
            record(3, url="not a url"),
        ],
        [record(4), record(5, alias="x" * 65)],
    ]
    imports_ = engine(parts, pages)
    started = await imports_.start(principal=alice, kind="listed", settings={}, enqueue=False)
    assert started.status == "queued"
    done = await imports_.run(started.id)
    assert (done.status, done.total, done.read) == ("finished", 4, 5)
    assert (done.imported, done.skipped, done.failed) == (2, 0, 3)
    made = await stored_links(parts)
    assert made[0] == ("first", "https://example.com/1", "The first", CREATED)
    assert made[1][1:3] == ("https://example.com/4", None)
    rows = await report(imports_, started.id, alice)
    assert [(n, outcome) for n, outcome, _, _ in rows] == [
        (1, "imported"), (2, "failed"), (3, "failed"), (4, "imported"), (5, "failed")
    ]  # fmt: skip
    assert [code for _, _, code, _ in rows] == ["first", None, None, made[1][0], None]
    reasons = [reason or "" for _, _, _, reason in rows]
    assert reasons[1] == "the row has 3 fields, the header 4"
    assert reasons[2].startswith("url:")
    assert reasons[4].startswith("alias:")
    async with parts.db.read() as conn:
        sources = await conn.execute(sa.select(link_sources.c.source_id).order_by("link_id"))
        assert sources.scalars().all() == ["id-1", "id-4"]
        tags = await parts.links.get(code="first", principal=alice)
    assert tags.tags == ["a", "b"]


async def test_running_the_same_source_again_makes_nothing_new(parts: Parts) -> None:
    alice = await user(parts.db, parts.clock, "alice@example.com")
    clicks = Clicks("id-1", daily=[DayClicks(date(2024, 1, 2), 5)], total=3)
    pages: list[list[Item]] = [[record(1, alias="one"), clicks, record(2)]]
    imports_ = engine(parts, pages)
    first = await imports_.start(principal=alice, kind="listed", settings={}, enqueue=False)
    await imports_.run(first.id)
    again = await imports_.start(principal=alice, kind="listed", settings={}, enqueue=False)
    done = await imports_.run(again.id)
    assert (done.imported, done.skipped, done.failed, done.clicks) == (0, 2, 0, 0)
    assert len(await stored_links(parts)) == 2
    rows = await report(imports_, again.id, alice)
    assert rows[0][1:] == ("skipped", "one", "imported before (as one)")
    async with parts.db.read() as conn:
        total = (await conn.execute(sa.select(link_clicks_total.c.clicks))).scalar_one()
    assert total == 8
    # Another user importing the same source makes their own links.
    bob = await user(parts.db, parts.clock, "bob@example.com")
    theirs = await imports_.start(principal=bob, kind="listed", settings={}, enqueue=False)
    done = await imports_.run(theirs.id)
    assert (done.imported, done.skipped, done.failed) == (1, 1, 0)  # "one" is alice's alias


@pytest.mark.parametrize(("on_conflict", "outcome"), [("skip", "skipped"), ("fail", "failed")])
async def test_a_taken_alias_is_skipped_or_fails(
    parts: Parts, on_conflict: OnConflict, outcome: str
) -> None:
    alice = await user(parts.db, parts.clock, "alice@example.com")
    await parts.links.create(link_in=_create("taken"), principal=alice, key=None)
    # Twice in one page: the second meets the first.
    pages: list[list[Item]] = [
        [record(1, alias="taken"), record(2, alias="other"), record(3, alias="other")]
    ]
    imports_ = engine(parts, pages)
    started = await imports_.start(
        principal=alice, kind="listed", settings={}, on_conflict=on_conflict, enqueue=False
    )
    await imports_.run(started.id)
    rows = await report(imports_, started.id, alice)
    assert [(what, code, reason) for _, what, code, reason in rows] == [
        (outcome, None, "the alias 'taken' is taken"),
        ("imported", "other", None),
        (outcome, None, "the alias 'other' is taken"),
    ]
    assert sorted(code for code, *_ in await stored_links(parts)) == ["other", "taken"]


async def test_renaming_gives_the_next_free_suffix(parts: Parts) -> None:
    alice = await user(parts.db, parts.clock, "alice@example.com")
    await parts.links.create(link_in=_create("taken"), principal=alice, key=None)
    await parts.links.create(link_in=_create("taken-2"), principal=alice, key=None)
    pages: list[list[Item]] = [[record(1, alias="taken"), record(2, alias="taken")]]
    imports_ = engine(parts, pages)
    started = await imports_.start(
        principal=alice, kind="listed", settings={}, on_conflict="rename", enqueue=False
    )
    await imports_.run(started.id)
    rows = await report(imports_, started.id, alice)
    assert [(outcome, code) for _, outcome, code, _ in rows] == [
        ("renamed", "taken-3"),
        ("renamed", "taken-4"),
    ]
    assert rows[0][3] == "the alias 'taken' was taken"


def _create(alias: str) -> Any:
    from kurz.links.models import LinkCreate

    return LinkCreate(url="https://example.org/", alias=alias)


async def test_statistics_go_into_every_rollup(parts: Parts) -> None:
    alice = await user(parts.db, parts.clock, "alice@example.com")
    day = date(2024, 3, 1)
    hour = datetime(2024, 3, 1, 14, tzinfo=UTC)
    pages: list[list[Item]] = [
        [
            record(1, alias="busy"),
            Clicks(
                "id-1",
                daily=[DayClicks(day, 7, bot_clicks=2, uniques=4), DayClicks(date(2024, 3, 2), 1)],
                hourly=[HourClicks(hour, 7, bot_clicks=2, uniques=4)],
                breakdowns=[
                    DayBreakdown("country", day, "DE", 5),
                    DayBreakdown("country", day, "FR", 2),
                    DayBreakdown("referrer", date(2024, 3, 3), "example.net", 1),
                ],
            ),
            Clicks("id-1", total=10),
            Clicks("id-unknown", daily=[DayClicks(day, 99)]),
        ]
    ]
    imports_ = engine(parts, pages)
    started = await imports_.start(principal=alice, kind="listed", settings={}, enqueue=False)
    done = await imports_.run(started.id)
    assert done.clicks == 7 + 2 + 1 + 10
    midnight = datetime(2024, 3, 1, tzinfo=UTC)
    async with parts.db.read() as conn:
        daily = (await conn.execute(
            sa.select(link_clicks_daily.c.day, link_clicks_daily.c.clicks,
                      link_clicks_daily.c.bot_clicks, link_clicks_daily.c.uniques)
            .order_by(link_clicks_daily.c.day)
        )).all()  # fmt: skip
        hourly = (
            await conn.execute(sa.select(link_clicks_hourly.c.hour, link_clicks_hourly.c.clicks))
        ).all()
        parts_ = (await conn.execute(
            sa.select(link_breakdowns_daily.c.dimension, link_breakdowns_daily.c.value,
                      link_breakdowns_daily.c.clicks)
            .order_by(link_breakdowns_daily.c.dimension, link_breakdowns_daily.c.value)
        )).all()  # fmt: skip
        total = (await conn.execute(sa.select(link_clicks_total.c.clicks))).scalar_one()
        owner = (await conn.execute(
            sa.select(owner_clicks_daily.c.user_id, owner_clicks_daily.c.clicks)
            .order_by(owner_clicks_daily.c.day)
        )).all()  # fmt: skip
    assert [tuple(row) for row in daily] == [
        (midnight, 7, 2, 4),
        (datetime(2024, 3, 2, tzinfo=UTC), 1, 0, 1),
        # A day with breakdowns has its daily row (kurz.analytics.settled counts on it).
        (datetime(2024, 3, 3, tzinfo=UTC), 0, 0, 0),
    ]
    assert [tuple(row) for row in hourly] == [(hour, 7)]
    assert [tuple(row) for row in parts_] == [
        ("country", "DE", 5), ("country", "FR", 2), ("referrer", "example.net", 1)
    ]  # fmt: skip
    assert total == 7 + 1 + 10
    assert [tuple(row) for row in owner] == [
        (alice.user_id, 7), (alice.user_id, 1), (alice.user_id, 0)
    ]  # fmt: skip


class Died(BaseException):
    """As if the process were killed: nothing after it runs (not an Exception, which
    the engine would report as a failed import)."""


async def test_a_run_that_stopped_goes_on_from_its_last_page(parts: Parts) -> None:
    alice = await user(parts.db, parts.clock, "alice@example.com")
    pages: list[list[Item]] = [
        [record(n + 10 * p), Clicks(f"id-{n + 10 * p}", total=1)]
        for p in range(4) for n in range(3)
    ]  # fmt: skip
    imports_ = engine(parts, pages)
    started = await imports_.start(principal=alice, kind="listed", settings={}, enqueue=False)
    seen: list[int] = []

    def die_after_five(progress: Any) -> None:
        seen.append(progress.read)
        if len(seen) == 5:
            raise Died

    with pytest.raises(Died):
        await imports_.run(started.id, progress=die_after_five)
    stopped = await imports_.get(started.id, principal=alice)
    assert (stopped.status, stopped.read, stopped.imported) == ("running", 5, 5)
    done = await imports_.run(started.id)
    assert (done.status, done.read, done.imported, done.clicks) == ("finished", 12, 12, 12)
    made = await stored_links(parts)
    assert len(made) == len({code for code, *_ in made}) == 12
    rows = await report(imports_, started.id, alice)
    assert [n for n, *_ in rows] == list(range(1, 13))


async def test_two_runs_at_once_write_each_page_once(parts: Parts) -> None:
    """A run whose next page another run wrote meanwhile (a worker whose lease ran out
    but which went on) stops instead of writing it again."""
    alice = await user(parts.db, parts.clock, "alice@example.com")
    pages: list[list[Item]] = [[record(1)], [record(2)], [record(3)]]

    async def other_run_writes_page_two() -> None:
        async with parts.db.write(READ_COMMITTED) as conn:
            await conn.execute(
                sa.update(imports).where(imports.c.id == started.id).values(position="2")
            )

    class Overtaken(Listed):
        async def pages(self, after: str | None) -> Any:
            async for page in super().pages(after):
                yield page
                await other_run_writes_page_two()

    kind = SourceKind(
        name="listed", title="", source="listed", takes_file=False,
        open=lambda opening: Overtaken(pages),
    )  # fmt: skip
    imports_ = engine(parts, pages)
    imports_.kinds = {"listed": kind}
    started = await imports_.start(principal=alice, kind="listed", settings={}, enqueue=False)
    read: list[int] = []
    with pytest.raises(_Overtaken):
        await imports_.run(started.id, progress=lambda progress: read.append(progress.read))
    assert read == [1]
    assert len(await stored_links(parts)) == 1


async def test_a_source_that_cannot_be_read_fails_the_import(parts: Parts) -> None:
    alice = await user(parts.db, parts.clock, "alice@example.com")
    imports_ = engine(parts, [[record(1)], [record(2)]], broken=1)
    started = await imports_.start(principal=alice, kind="listed", settings={}, enqueue=False)
    done = await imports_.run(started.id)
    assert (done.status, done.error, done.imported) == ("failed", "page 1 cannot be read", 1)
    assert done.finished_at is not None
    # Ended: running it again changes nothing.
    assert await imports_.run(started.id) == done


async def test_the_job_runs_an_import(parts: Parts) -> None:
    alice = await user(parts.db, parts.clock, "alice@example.com")
    imports_ = engine(parts, [[record(1)], [record(2)]])
    from kurz.jobs import Registry

    registry = Registry()
    imports_.register(registry)
    started = await imports_.start(principal=alice, kind="listed", settings={})
    worker = Worker(parts.jobs, registry)
    assert await worker.run_once() == 1
    done = await imports_.get(started.id, principal=alice)
    assert (done.status, done.imported) == ("finished", 2)


async def test_what_start_refuses(parts: Parts) -> None:
    alice = await user(parts.db, parts.clock, "alice@example.com")
    admin = await user(parts.db, parts.clock, "root@example.com", role="admin")
    imports_ = engine(parts, [])
    cases: list[tuple[Any, dict[str, Any], int, str]] = [
        (alice, {"kind": "nope"}, 422, "source: unknown source; one of: listed"),
        (alice, {"domain": "elsewhere.example"}, 422, "domain: names no domain"),
        (alice, {"owner": "root@example.com"}, 422, "owner: only an admin"),
        (admin, {"owner": "nobody@example.com"}, 422, "owner: no user has this email"),
    ]
    for principal, asked, status, detail in cases:
        with pytest.raises(Problem) as caught:
            await imports_.start(
                **{"principal": principal, "kind": "listed", "settings": {}, **asked}
            )
        assert caught.value.status == status
        assert caught.value.detail.startswith(detail), caught.value.detail

    async def one_piece() -> Any:
        yield b"x"

    with pytest.raises(Problem, match="reads no file"):
        await imports_.start(principal=alice, kind="listed", settings={}, file=one_piece())
    # Another user's import is not found; an admin's own for another is theirs.
    made = await imports_.start(
        principal=admin, kind="listed", settings={}, owner="alice@example.com"
    )
    assert (await imports_.get(made.id, principal=alice)).id == made.id
    bob = await user(parts.db, parts.clock, "bob@example.com")
    with pytest.raises(Problem) as caught:
        await imports_.get(made.id, principal=bob)
    assert caught.value.status == 404
    assert [found.id for found in await imports_.list(principal=bob)] == []
