"""A link's top values over settled days are summed once and kept, and a click that
lands late on one of those days is in the next answer, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
from fastapi import FastAPI

from kurz.analytics.settled import SettledSums
from kurz.analytics.store import ClickStore
from tests.integration.analytics.recorded import click
from tests.integration.analytics.test_stats_api import link_id, stats, top
from tests.integration.links.support import create
from tests.support import FakeClock

# FakeClock's today is 2026-01-01: the 30 days before it are settled.
DEC_30 = 1_767_052_800.0 + 10 * 3600  # 2025-12-30 10:00 UTC
DEC_31 = DEC_30 + 86_400
TODAY = 1_767_225_600.0 + 3600  # 2026-01-01 01:00 UTC

_batches = itertools.count()
_visitors = itertools.count()


async def record(app: FastAPI, link: int, at: float, **fields: Any) -> None:
    """Clicks as the click store records them, each in a batch of its own."""
    store = ClickStore(app.state.kurz.db)
    assert (
        await store.record(
            [
                (
                    f"b{next(_batches)}",
                    [click(link=link, at=at, visitor=f"v{next(_visitors)}", **fields)],
                )
            ]
        )
        == 1
    )


def kept(app: FastAPI) -> SettledSums:
    settled: SettledSums | None = app.state.kurz.stats.settled
    assert settled is not None
    return settled


async def test_a_late_click_on_a_settled_day_is_in_the_next_answer(
    app: FastAPI, api: httpx.AsyncClient, clock: FakeClock
) -> None:
    clock.advance(2 * 3600)  # 02:00 on 2026-01-01: today's clicks are in the range
    code = (await create(api))["code"]
    link = await link_id(app, code)
    for _ in range(3):
        await record(app, link, DEC_30, referrer_host="a.example")
    for _ in range(2):
        await record(app, link, DEC_31, referrer_host="b.example")
    await record(app, link, TODAY, referrer_host="c.example")

    first = await stats(api, code)
    assert top(first, "referrer") == [("a.example", 3), ("b.example", 2), ("c.example", 1)]
    hits = kept(app).hits
    # Today's click counts at once: today is summed on every request.
    await record(app, link, TODAY, referrer_host="c.example")
    again = await stats(api, code)
    assert top(again, "referrer") == [("a.example", 3), ("b.example", 2), ("c.example", 2)]
    assert kept(app).hits == hits + 1

    # Two clicks recorded late for Dec 30 (a queue drained today): the sums are summed again.
    for _ in range(2):
        await record(app, link, DEC_30, referrer_host="b.example")
    late = await stats(api, code)
    assert top(late, "referrer") == [("b.example", 4), ("a.example", 3), ("c.example", 2)]
    assert late["totals"]["clicks"] == 9
    # A bot's late click counts as a bot's only; it is seen all the same.
    await record(app, link, DEC_31, browser="Googlebot", bot=True)
    bots = await stats(api, code)
    assert top(bots, "bot") == [("Googlebot", 1)]
    assert top(bots, "referrer") == top(late, "referrer")


async def test_each_link_and_range_is_kept_apart(app: FastAPI, api: httpx.AsyncClient) -> None:
    first, second = (await create(api))["code"], (await create(api))["code"]
    await record(app, await link_id(app, first), DEC_30, referrer_host="first.example")
    await record(app, await link_id(app, second), DEC_31, referrer_host="second.example")
    assert top(await stats(api, first), "referrer") == [("first.example", 1)]
    assert top(await stats(api, second), "referrer") == [("second.example", 1)]
    # A range that ends before Dec 31 holds the first link's click only.
    narrow = {"from": "2025-12-29T00:00:00Z", "to": "2025-12-31T00:00:00Z"}
    assert top(await stats(api, first, **narrow), "referrer") == [("first.example", 1)]
    assert top(await stats(api, second, **narrow), "referrer") == []


async def test_after_midnight_the_sums_move_a_day_and_still_hold(
    app: FastAPI, api: httpx.AsyncClient, clock: FakeClock
) -> None:
    clock.advance(2 * 3600)  # 02:00 on 2026-01-01; the range: Dec 2 to today
    code = (await create(api))["code"]
    link = await link_id(app, code)
    dec_2 = DEC_30 - 28 * 86_400
    for _ in range(2):
        await record(app, link, dec_2, referrer_host="gone.example")
    for _ in range(3):
        await record(app, link, DEC_30 - 10 * 86_400, referrer_host="a.example")
    await record(app, link, TODAY, referrer_host="today.example")
    assert top(await stats(api, code), "referrer") == [
        ("a.example", 3), ("gone.example", 2), ("today.example", 1),
    ]  # fmt: skip

    # A day later: Dec 2 has left the range, and Jan 1 joined the settled days.
    clock.advance(86_400)
    moves = kept(app).moves
    next_day = await stats(api, code)
    assert top(next_day, "referrer") == [("a.example", 3), ("today.example", 1)]
    assert next_day["totals"]["clicks"] == 4
    assert kept(app).moves == moves + 1

    # A late click on a day of both ranges: summed anew, and counted.
    await record(app, link, DEC_30, referrer_host="b.example")
    assert top(await stats(api, code), "referrer") == [
        ("a.example", 3), ("b.example", 1), ("today.example", 1),
    ]  # fmt: skip
    assert kept(app).moves == moves + 1
