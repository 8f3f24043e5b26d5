"""A dead process's click journal, replayed into the store: every click counted once,
even when a batch was written and not marked, and when a replay is cut short and done
again; on both databases."""

from __future__ import annotations

import asyncio
from pathlib import Path

from kurz.analytics.events import ClickEvent, click_event
from kurz.analytics.journal import ClickJournal, Replayer
from kurz.analytics.queue import batch_id
from kurz.analytics.store import ClickStore
from kurz.db import Database
from kurz.db.tables import link_clicks_daily
from tests.integration.analytics.recorded import HOUR, rows

FINGERPRINT = b"\x07" * 16


def clicks(n: int) -> list[ClickEvent]:
    return [
        click_event(
            link_id=1 + i % 5,
            at=HOUR + i,
            referrer_host="news.example" if i % 2 else None,
            browser="Firefox",
            os="Linux",
            device="desktop",
            bot=False,
            visitor=f"{i % 40:016x}",
        )
        for i in range(n)
    ]


async def counted(db: Database) -> int:
    return sum(clicks for (clicks,) in await rows(db, link_clicks_daily, "clicks"))


async def test_a_replay_cut_short_and_done_again_counts_every_click_once(
    db: Database, tmp_path: Path
) -> None:
    store = ClickStore(db)
    events = clicks(2_500)
    directory = tmp_path / "clicks"
    journal = ClickJournal(directory, FINGERPRINT, segment_bytes=16_384, reserve=2_048)
    for event in events:
        journal.append(event)
    # Written and marked.
    first = batch_id()
    assert journal.assign(first, 1_000)
    await store.record([(first, events[:1_000])])
    journal.committed(first)
    # Written, and the process died before marking it.
    second = batch_id()
    assert journal.assign(second, 500)
    await store.record([(second, events[1_000:1_500])])
    # The other 1,000 were only journaled.
    journal.close()
    assert await counted(db) == 1_500

    # A replayer that dies after writing one batch of its own.
    wrote_one = asyncio.Event()
    calls = 0

    async def then_die(ident: str, batch: list[ClickEvent]) -> None:
        nonlocal calls
        calls += 1
        if calls > 2:
            wrote_one.set()
            await asyncio.Event().wait()
        await store.record([(ident, batch)])

    cut_short = asyncio.create_task(Replayer(directory, FINGERPRINT, then_die).replay_dead())
    await wrote_one.wait()
    cut_short.cancel()
    assert await counted(db) == 2_000

    async def write(ident: str, batch: list[ClickEvent]) -> None:
        await store.record([(ident, batch)])

    replayer = Replayer(directory, FINGERPRINT, write)
    assert await replayer.replay_dead() == 1_500
    assert await counted(db) == 2_500
    assert list(directory.iterdir()) == []
