"""The overview of a user's own links (the dashboard's use case), from daily rollup rows
written directly (with the per-owner rollups made from them, as the click store keeps
them), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

from kurz.analytics.models import Overview
from kurz.analytics.service import Stats
from kurz.auth.models import MEMBER_SCOPES, SCOPES, Principal
from kurz.db import Database
from tests.integration.analytics.rollups import (
    Rollups,
    Statements,
    at,
    new_domain,
    new_link,
)
from tests.integration.auth.support import new_user
from tests.support import FakeClock

HOST = "kurz.test"


def principal(user_id: int, *, admin: bool = False) -> Principal:
    if admin:
        return Principal(user_id, "admin", frozenset(SCOPES), "root@example.com")
    return Principal(user_id, "member", MEMBER_SCOPES, "member@example.com")


async def overview(
    db: Database, clock: FakeClock, who: Principal, first: str, last: str
) -> Overview:
    stats = Stats(db=db, clock=clock, default_host=HOST)
    span = stats.days(
        first=date.fromisoformat(first), last=date.fromisoformat(last), interval="day"
    )
    return await stats.overview(principal=who, span=span)


async def test_clicks_by_day_over_the_users_own_links_and_their_top_links_of_all_time(
    db: Database, clock: FakeClock
) -> None:
    ada = await new_user(db, clock, "ada@example.com")
    bob = await new_user(db, clock, "bob@example.com")
    root = await new_user(db, clock, "root@example.com", "admin")
    # Made first, so with the lower id: a tie goes to the newer link, whatever the codes.
    alpha = await new_link(db, clock, ada, "alpha", url="https://alpha.example/")
    zeta = await new_link(db, clock, ada, "zeta", title="Zeta")
    gone = await new_link(db, clock, ada, "gone", deleted=True)
    bobs = await new_link(db, clock, bob, "bobs")
    roots = await new_link(db, clock, root, "roots")
    await (
        Rollups()
        .day(zeta, "2025-12-28", 100, 100)  # before the range
        .day(zeta, "2025-12-30", 5, 4, bots=1)
        .day(alpha, "2025-12-30", 3, 3)
        .day(alpha, "2025-12-31", 2, 2, bots=4)
        .day(alpha, "2026-01-01", 100, 100)  # after it
        .day(gone, "2025-12-30", 500, 50)
        .day(bobs, "2025-12-30", 70, 70)
        .day(roots, "2025-12-31", 9, 9)
        .write(db)
    )

    mine = await overview(db, clock, principal(ada), "2025-12-29", "2025-12-31")

    assert (mine.start, mine.end) == (at("2025-12-29"), at("2026-01-01"))
    # A deleted link's clicks stay in the days they happened on.
    assert [(p.at, p.clicks, p.uniques, p.bot_clicks) for p in mine.series] == [
        (at("2025-12-29"), 0, 0, 0),
        (at("2025-12-30"), 508, 57, 1),
        (at("2025-12-31"), 2, 2, 4),
    ]
    assert (mine.totals.clicks, mine.totals.uniques, mine.totals.bot_clicks) == (510, 59, 5)
    assert mine.links == 2
    # The top links count every day, and leave the deleted link out.
    assert [(link.code, link.clicks) for link in mine.top_links] == [
        ("zeta", 105), ("alpha", 105),
    ]  # fmt: skip
    assert [link.code for link in mine.recent_links] == ["zeta", "alpha"]
    second = mine.top_links[1]
    assert (second.url, second.title, second.domain, second.host) == (
        "https://alpha.example/", None, None, HOST,
    )  # fmt: skip
    assert mine.top_links[0].title == "Zeta"

    # An admin's overview is their own links too, not everyone's.
    own = await overview(db, clock, principal(root, admin=True), "2025-12-29", "2025-12-31")
    assert own.totals.clicks == 9
    assert [link.code for link in own.top_links] == [link.code for link in own.recent_links]
    assert [link.code for link in own.recent_links] == ["roots"]


async def test_the_ten_most_clicked_and_the_ten_newest(db: Database, clock: FakeClock) -> None:
    ada = await new_user(db, clock, "ada@example.com")
    branded = await new_domain(db, clock, "go.example")
    rollups = Rollups()
    for i in range(12):
        link_id = await new_link(db, clock, ada, f"link{i:02}")
        rollups.day(link_id, "2025-12-31", i + 1, 1)
    # Bots only: no clicks by people, so not a top link.
    botted = await new_link(db, clock, ada, "botted")
    on_domain = await new_link(db, clock, ada, "branded", domain_id=branded)
    await (
        rollups.day(botted, "2025-12-31", 0, 0, bots=40)
        .day(on_domain, "2025-12-31", 20, 1)
        .write(db)
    )

    mine = await overview(db, clock, principal(ada), "2025-12-02", "2025-12-31")

    assert len(mine.series) == 30
    assert mine.links == 14
    assert [(link.code, link.clicks) for link in mine.top_links] == [
        ("branded", 20), *((f"link{i:02}", i + 1) for i in range(11, 2, -1)),
    ]  # fmt: skip
    assert (mine.top_links[0].domain, mine.top_links[0].host) == ("go.example", "go.example")
    assert [link.code for link in mine.recent_links] == [
        "branded", "botted", *(f"link{i:02}" for i in range(11, 3, -1)),
    ]  # fmt: skip
    assert mine.totals.bot_clicks == 40


async def test_a_new_user_has_an_empty_overview(db: Database, clock: FakeClock) -> None:
    ada = await new_user(db, clock, "ada@example.com")
    mine = await overview(db, clock, principal(ada), "2025-12-02", "2025-12-31")
    assert (mine.links, mine.top_links, mine.recent_links) == (0, [], [])
    assert mine.totals.clicks == 0
    assert [p.clicks for p in mine.series] == [0] * 30


async def test_the_statements_do_not_grow_with_the_links(db: Database, clock: FakeClock) -> None:
    ada = await new_user(db, clock, "ada@example.com")
    statements = Statements(db)

    async def count() -> int:
        before = statements.count
        await overview(db, clock, principal(ada), "2025-12-02", "2025-12-31")
        return statements.count - before

    rollups = Rollups()
    for i in range(2):
        rollups.day(await new_link(db, clock, ada, f"few{i}"), "2025-12-30", 1, 1)
    await rollups.write(db)
    few = await count()
    for i in range(40):
        link_id = await new_link(db, clock, ada, f"many{i}")
        rollups.day(link_id, "2025-12-30", 1, 1).day(link_id, "2025-12-31", 2, 1)
    await rollups.write(db)
    assert await count() == few
