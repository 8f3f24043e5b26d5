"""The purge: old batches with their events, old batch ids and old visitor sets go,
the rollups stay; on both databases."""

from __future__ import annotations

from kurz.analytics.queue import batch_id
from kurz.analytics.retention import BATCH_MEMORY, purge
from kurz.analytics.store import ClickStore
from kurz.db import Database
from kurz.db.tables import click_batches, link_visitors_hourly
from tests.integration.analytics.recorded import HOUR, click, hourly, logged, rows, utc


async def test_the_purge_deletes_old_batches_with_their_events_and_visitor_sets(
    db: Database,
) -> None:
    store = ClickStore(db)
    old, young = HOUR - 40 * 86_400, HOUR
    for at in (old, old + 1, old + 2, young):
        await store.record([(batch_id(at=at), [click(at=at, visitor=str(at))])])
    # A late event: as old as the others, in a batch made now. Events go with their
    # batch, which is young: it stays until the batch is old.
    late = click(at=old + 3, visitor="late")
    await store.record([(batch_id(at=young), [late])])
    purged = await purge(db=db, now=HOUR + 60, retention=30 * 86_400, chunk=2)
    assert purged == 3
    assert sorted(await logged(db)) == [late, click(at=young, visitor=str(young))]
    assert len(await rows(db, click_batches, "id")) == 2
    assert [hour for (hour,) in await rows(db, link_visitors_hourly, "hour")] == [utc(young)]
    # The rollups are kept.
    assert len(await hourly(db)) == 2


async def test_a_retention_shorter_than_the_batch_memory_drops_events_and_keeps_ids(
    db: Database,
) -> None:
    store = ClickStore(db)
    now = HOUR + 3 * 86_400
    assert now - HOUR < BATCH_MEMORY
    old = (batch_id(at=HOUR), [click(at=HOUR)])
    young = (batch_id(at=now - 60), [click(at=now - 60)])
    await store.record([old])
    await store.record([young])
    purged = await purge(db=db, now=now, retention=86_400, chunk=1)
    assert purged == 1
    assert await logged(db) == young[1]
    assert len(await rows(db, click_batches, "id")) == 2
    # Its id is remembered: delivered again, the old batch is still not counted twice.
    assert await store.record([old]) == 0
