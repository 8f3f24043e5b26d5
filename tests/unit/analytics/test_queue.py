"""The click queue: never waits, bounded, batched, and drained on stop."""

from __future__ import annotations

import asyncio
import logging

import pytest

from kurz.analytics.queue import BatchQueue, Drainer, batch_id, until_done


class Sink:
    """Where the drainer writes: batches as written, and failures to give on request."""

    def __init__(self, fail: int = 0) -> None:
        self.batches: list[list[int]] = []
        # The batch id of every attempt, failed or not.
        self.ids: list[str] = []
        self.fail = fail
        self.gate = asyncio.Event()
        self.gate.set()
        # Set once a write has begun (and waits at the gate, if it is closed).
        self.writing = asyncio.Event()

    async def write(self, ident: str, batch: list[int]) -> None:
        self.writing.set()
        await self.gate.wait()
        self.ids.append(ident)
        if self.fail:
            self.fail -= 1
            raise ConnectionError("database away")
        self.batches.append(list(batch))

    @property
    def items(self) -> list[int]:
        return [item for batch in self.batches for item in batch]


def test_a_full_queue_drops_the_newest_and_counts_it() -> None:
    queue: BatchQueue[int] = BatchQueue(3)
    assert [queue.put(i) for i in range(5)] == [True, True, True, False, False]
    assert (len(queue), queue.accepted, queue.dropped) == (3, 3, 2)
    assert queue.take_now(10) == [0, 1, 2]
    assert queue.put(9)


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity"):
        BatchQueue(0)


async def test_take_waits_for_an_item_then_gives_a_batch() -> None:
    queue: BatchQueue[int] = BatchQueue(100)
    taker = asyncio.create_task(queue.take(10))
    await asyncio.sleep(0)
    assert not taker.done()
    for i in range(15):
        queue.put(i)
    assert await taker == list(range(10))
    assert await queue.take(10) == list(range(10, 15))


async def test_the_drainer_writes_batches_in_order_and_everything_on_stop() -> None:
    queue: BatchQueue[int] = BatchQueue(10_000)
    sink = Sink()
    drainer = Drainer(queue, sink.write, batch=100, linger=0.0)
    drainer.start()
    for i in range(1_000):
        queue.put(i)
    await asyncio.sleep(0)
    sink.gate.clear()  # the database stalls: events pile up behind it
    for i in range(1_000, 2_500):
        queue.put(i)
    sink.gate.set()
    await drainer.stop()
    assert sink.items == list(range(2_500))
    assert all(len(batch) <= 100 for batch in sink.batches)
    assert drainer.written == 2_500
    assert len(queue) == 0


async def test_a_failed_write_is_retried_and_loses_nothing() -> None:
    queue: BatchQueue[int] = BatchQueue(100)
    sink = Sink(fail=2)
    drainer = Drainer(queue, sink.write, batch=10, linger=0.0, retry_after=0.001)
    drainer.start()
    for i in range(25):
        queue.put(i)
    await drainer.stop()
    assert sink.items == list(range(25))
    assert drainer.failures == 2
    # Every attempt at one batch carries its id, so that a store can tell a retry of a
    # batch it has already committed.
    first = sink.ids[0]
    assert sink.ids[:3] == [first] * 3
    assert len(set(sink.ids)) == len(sink.batches)


async def test_stop_finishes_the_batch_being_written() -> None:
    queue: BatchQueue[int] = BatchQueue(100)
    sink = Sink()
    sink.gate.clear()
    drainer = Drainer(queue, sink.write, batch=5, linger=0.0)
    drainer.start()
    for i in range(12):
        queue.put(i)
    await sink.writing.wait()  # the drainer has taken its first batch and is stuck in write
    stopping = asyncio.create_task(drainer.stop())
    # However long it is given, stop() cannot end while that write is stuck; a stop()
    # that cancelled the write would have ended within these turns of the loop.
    for _ in range(20):
        await asyncio.sleep(0)
    assert not stopping.done()
    assert sink.items == []
    sink.gate.set()
    await stopping
    assert sink.items == list(range(12))


def test_batch_ids_are_unique_and_sort_by_time() -> None:
    ids = [batch_id(at=1_700_000_000.0 + n) for n in range(100)]
    assert len(set(ids)) == 100
    assert ids == sorted(ids)
    assert all(len(ident) == 32 for ident in ids)
    # The same millisecond: still distinct.
    assert batch_id(at=1.0) != batch_id(at=1.0)


async def test_a_write_that_keeps_failing_logs_its_traceback_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A database down for an hour must not write a page of traceback a second.
    outcomes: list[Exception | None] = [
        OSError("refused"),
        OSError("refused"),
        OSError("refused"),
        ValueError("other"),
        None,
    ]

    async def attempt() -> str:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome
        return "written"

    with caplog.at_level(logging.INFO, logger="kurz.analytics"):
        assert await until_done(attempt, what="writing", retry_after=0) == "written"
    records = [(r.levelno, r.exc_info is not None, r.getMessage()) for r in caplog.records]
    assert records == [
        (logging.ERROR, True, "writing failed; trying again in 0 s"),
        (
            logging.ERROR,
            False,
            "writing failed again (2 times in a row: refused); trying again in 0 s",
        ),
        (
            logging.ERROR,
            False,
            "writing failed again (3 times in a row: refused); trying again in 0 s",
        ),
        # Another cause: its traceback is news.
        (logging.ERROR, True, "writing failed; trying again in 0 s"),
        (logging.INFO, False, "writing succeeded after 4 failures"),
    ]
