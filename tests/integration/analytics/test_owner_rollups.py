"""The rollups kept per owner (owner_clicks_daily, link_clicks_total) hold what summing
link_clicks_daily by each link's owner gives: through redirects and the drainer, for a
batch of two owners' clicks, for a batch delivered again, and after a user's links move
to another; on both databases."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import sqlalchemy as sa

from kurz.accounts import users
from kurz.analytics.queue import batch_id
from kurz.analytics.store import ClickStore, record
from kurz.app import create_app
from kurz.auth import queries as key_queries
from kurz.auth.models import ApiKeyCreate
from kurz.bootstrap import build
from kurz.clock import utcnow
from kurz.config import Settings
from kurz.db import READ_COMMITTED, Database
from kurz.db.tables import link_clicks_daily, link_clicks_total, links, owner_clicks_daily
from tests.conftest import BASE_URL
from tests.integration.analytics.recorded import DAY, HOUR, click, rows, utc
from tests.integration.analytics.rollups import new_link
from tests.integration.auth.support import new_user
from tests.integration.links.support import create
from tests.support import FakeClock

NEXT_DAY = DAY + 86_400
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


async def kept(db: Database) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """owner_clicks_daily's rows and link_clicks_total's, in key order."""
    by_day = await rows(db, owner_clicks_daily, "user_id", "day", "clicks", "bot_clicks", "uniques")
    by_link = await rows(db, link_clicks_total, "link_id", "user_id", "clicks")
    return by_day, by_link


async def summed(db: Database) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The same, summed from link_clicks_daily by each link's owner now."""
    d = link_clicks_daily.c
    owner = links.c.user_id
    joined = link_clicks_daily.join(links, links.c.id == d.link_id)

    def total(column: sa.Column[int]) -> sa.ColumnElement[int]:
        return sa.cast(sa.func.sum(column), sa.BigInteger)

    async with db.read() as conn:
        by_day = await conn.execute(
            sa.select(owner, d.day, total(d.clicks), total(d.bot_clicks), total(d.uniques))
            .select_from(joined)
            .group_by(owner, d.day)
            .order_by(owner, d.day)
        )
        by_link = await conn.execute(
            sa.select(d.link_id, owner, total(d.clicks))
            .select_from(joined)
            .group_by(d.link_id, owner)
            .having(sa.func.sum(d.clicks) > 0)
            .order_by(d.link_id)
        )
        return [tuple(row) for row in by_day], [tuple(row) for row in by_link]


async def test_a_batch_of_two_owners_is_summed_by_owner_and_link_and_counted_once(
    db: Database, clock: FakeClock
) -> None:
    ada = await new_user(db, clock, "ada@example.com")
    bob = await new_user(db, clock, "bob@example.com")
    one = await new_link(db, clock, ada, "one")
    two = await new_link(db, clock, ada, "two")
    bots_only = await new_link(db, clock, ada, "bots")
    bobs = await new_link(db, clock, bob, "bobs")
    store = ClickStore(db)
    both = (
        batch_id(),
        [
            click(link=one, visitor="a"),
            click(link=one, visitor="a"),
            click(link=one, visitor="b"),
            click(link=two, visitor="a"),
            click(link=two, at=NEXT_DAY + 60, visitor="c"),
            click(link=bots_only, bot=True, browser="Googlebot", device="bot", visitor="g"),
            click(link=bobs, visitor="z"),
            click(link=bobs, at=NEXT_DAY + 60, visitor="z"),
        ],
    )
    assert await store.record([both]) == 8
    # Delivered again (a lost acknowledgement), alone and then with a new batch.
    assert await store.record([both]) == 0
    later = (batch_id(), [click(link=one, visitor="a"), click(link=bobs, visitor="y")])
    assert await store.record([both, later]) == 2

    by_day, by_link = await kept(db)
    # Ada's uniques are her links' summed (a on one and on two is two); the visitor
    # sets of a link make a visitor's second click of the day add none.
    assert by_day == [
        (ada, utc(DAY), 5, 1, 3),
        (ada, utc(NEXT_DAY), 1, 0, 1),
        (bob, utc(DAY), 2, 0, 2),
        (bob, utc(NEXT_DAY), 1, 0, 1),
    ]
    # By people only: the link only bots followed has no row.
    assert by_link == [(one, ada, 4), (two, ada, 2), (bobs, bob, 3)]
    assert (by_day, by_link) == await summed(db)


async def test_a_users_deleted_links_keep_their_clicks_and_their_total(
    db: Database, clock: FakeClock
) -> None:
    # A batch can arrive after its link was deleted (clicked before): it counts.
    ada = await new_user(db, clock, "ada@example.com")
    gone = await new_link(db, clock, ada, "gone", deleted=True)
    await ClickStore(db).record([(batch_id(), [click(link=gone), click(link=gone, at=HOUR + 1)])])
    assert await kept(db) == ([(ada, utc(DAY), 2, 0, 1)], [(gone, ada, 2)])


async def test_a_deleted_users_clicks_go_to_the_heir_with_their_links(
    db: Database, clock: FakeClock
) -> None:
    ada = await new_user(db, clock, "ada@example.com")
    bob = await new_user(db, clock, "bob@example.com")
    cy = await new_user(db, clock, "cy@example.com")
    adas = await new_link(db, clock, ada, "adas")
    bobs = await new_link(db, clock, bob, "bobs")
    cys = await new_link(db, clock, cy, "cys")
    store = ClickStore(db)
    await store.record(
        [
            (
                batch_id(),
                [
                    click(link=adas, visitor="a"),
                    click(link=bobs, visitor="b"),
                    click(link=bobs, at=NEXT_DAY, visitor="b"),
                    click(link=cys, visitor="c"),
                ],
            )
        ]
    )

    async def remove(user_id: int, *, delete_links: bool) -> None:
        async with db.write(READ_COMMITTED) as conn:
            await users.remove(
                conn, user_id=user_id, heir_id=ada, delete_links=delete_links,
                now=utcnow(clock), by_user=ada, by_key=None,
            )  # fmt: skip

    # Bob's links go to Ada, and his clicks with them; Cy's links are deleted with him,
    # and so are his clicks by day (a deleted link's total stays with its row, now Ada's).
    await remove(bob, delete_links=False)
    await remove(cy, delete_links=True)
    # Clicks recorded after: Bob's link is Ada's.
    await store.record([(batch_id(), [click(link=bobs, visitor="x")])])

    by_day, by_link = await kept(db)
    assert by_day == [(ada, utc(DAY), 3, 0, 3), (ada, utc(NEXT_DAY), 1, 0, 1)]
    assert by_link == [(adas, ada, 1), (bobs, ada, 3), (cys, ada, 1)]
    # What summing gives, but for the clicks that went with Cy.
    expected_by_day, expected_by_link = await summed(db)
    assert expected_by_link == by_link
    assert expected_by_day == [(ada, utc(DAY), 4, 0, 4), (ada, utc(NEXT_DAY), 1, 0, 1)]


async def test_a_move_waits_for_the_batch_under_way_on_postgresql(
    postgres_url: str, clock: FakeClock
) -> None:
    # The race kurz.db.owners closes: a batch that read Bob as his link's owner, not yet
    # committed when Bob's links move. On SQLite the write lock runs them one at a time.
    db = Database.from_url(postgres_url)
    try:
        ada = await new_user(db, clock, "ada@example.com")
        bob = await new_user(db, clock, "bob@example.com")
        bobs = await new_link(db, clock, bob, "bobs")
        recorded, commit = asyncio.Event(), asyncio.Event()

        async def record_then_wait() -> None:
            async with db.write(READ_COMMITTED) as conn:
                await record(
                    conn, [(batch_id(), [click(link=bobs), click(link=bobs, at=HOUR + 1)])]
                )
                recorded.set()
                await commit.wait()

        async def move() -> None:
            async with db.write(READ_COMMITTED) as conn:
                await users.remove(
                    conn, user_id=bob, heir_id=ada, delete_links=False, now=utcnow(clock),
                    by_user=ada, by_key=None,
                )  # fmt: skip

        async def waiting_or_done() -> bool:
            if moving.done():
                return True
            async with db.read() as conn:
                waiting = await conn.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                        "AND NOT granted AND database = "
                        "(SELECT oid FROM pg_database WHERE datname = current_database())"
                    )
                )
                return bool(waiting.scalar_one())

        recording = asyncio.create_task(record_then_wait())
        await recorded.wait()
        moving = asyncio.create_task(move())
        # The move blocks inside PostgreSQL, where no event can tell us: poll its lock
        # table, with a deadline that only turns a hang into a failure.
        deadline = asyncio.get_running_loop().time() + 300
        while not await waiting_or_done():
            assert asyncio.get_running_loop().time() < deadline, "the move never waited"
            await asyncio.sleep(0.01)
        commit.set()
        await recording
        await moving

        assert await kept(db) == ([(ada, utc(DAY), 2, 0, 1)], [(bobs, ada, 2)])
        assert await kept(db) == await summed(db)
    finally:
        await db.dispose()


async def test_redirects_of_two_owners_links_land_in_both_rollups(
    settings: Settings, clock: FakeClock
) -> None:
    app = create_app(build(settings.model_copy(update={"analytics": True}), clock=clock))
    async with app.router.lifespan_context(app):
        state = app.state.kurz
        db: Database = state.db
        transport = httpx.ASGITransport(app=app)
        codes = []
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as anon:
            for name in ("ada", "bob"):
                async with db.write(READ_COMMITTED) as conn:
                    made = await key_queries.create(
                        conn=conn, key_in=ApiKeyCreate(name=name), now=utcnow(clock)
                    )
                headers = {"Authorization": f"Bearer {made.secret}"}
                async with httpx.AsyncClient(
                    transport=transport, base_url=BASE_URL, headers=headers
                ) as api:
                    codes += [(await create(api))["code"] for _ in range(2)]
            people = {"User-Agent": BROWSER}
            bots = {"User-Agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"}
            answers = await asyncio.gather(
                # The nth link followed n times: 1 and 2 for Ada's, 3 and 4 for Bob's.
                *(
                    anon.get(f"/{code}", headers=people)
                    for n, code in enumerate(codes, 1)
                    for _ in range(n)
                ),
                *(anon.get(f"/{codes[0]}", headers=bots) for _ in range(3)),
            )
            assert {answer.status_code for answer in answers} == {302}
        engine_url = str(db.engine.url)
    # The lifespan has ended: the drainer wrote every click before the engine closed.
    reader = Database.from_url(engine_url)
    try:
        by_day, by_link = await kept(reader)
        assert [(clicks, bots) for _, _, clicks, bots, _ in by_day] == [(3, 3), (7, 0)]
        assert sorted(clicks for _, _, clicks in by_link) == [1, 2, 3, 4]
        assert (by_day, by_link) == await summed(reader)
    finally:
        await reader.dispose()
