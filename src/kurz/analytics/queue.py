"""A bounded in-process queue that a hot path puts into without ever waiting, and a
drainer that writes what it holds in batches.

When the queue is full, the newest event is dropped and counted (`dropped`): memory
stays bounded, and a redirect never waits for analytics. A batch whose write fails
is kept and written again after a pause, so a database hiccup loses nothing unless
it lasts long enough for the queue to fill. `stop()` writes everything still queued
before it returns (a graceful shutdown loses no event).

Each batch has an id, the same on every attempt to write it, so that a write whose
commit succeeded but was not acknowledged (the connection dropped) and is tried
again is recognised by the store and not counted twice.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

log = logging.getLogger("kurz.analytics")

T = TypeVar("T")
R = TypeVar("R")


def _ignore() -> None:
    pass


async def until_done(
    attempt: Callable[[], Awaitable[R]],
    *,
    what: str,
    retry_after: float,
    failed: Callable[[], None] = _ignore,
) -> R:
    """Await `attempt()` until it succeeds, logging each failure and pausing after it.

    For writes that must not be given up: what they carry stays in hand meanwhile
    (a batch in the Drainer, unacknowledged entries in the stream consumer). The
    first failure is logged with its traceback; the ones after it, while the cause is
    the same (a database down for an hour), one line each.
    """
    failures = 0
    last: tuple[type[BaseException], str] | None = None
    while True:
        try:
            result = await attempt()
        except Exception as exc:
            failed()
            failures += 1
            cause = (type(exc), str(exc))
            if cause != last:
                log.exception("%s failed; trying again in %s s", what, retry_after)
            else:
                log.error(
                    "%s failed again (%d times in a row: %s); trying again in %s s",
                    what, failures, str(exc) or type(exc).__name__, retry_after,
                )  # fmt: skip
            last = cause
            await asyncio.sleep(retry_after)
        else:
            if failures:
                log.info("%s succeeded after %d failures", what, failures)
            return result


def batch_id(at: float | None = None) -> str:
    """A new batch id: the time in milliseconds (12 hex digits) and 80 random bits.

    Ids sort by time, so that a store forgets old ones by a range of its key.
    """
    return batch_prefix(time.time() if at is None else at) + os.urandom(10).hex()


def batch_prefix(at: float) -> str:
    """How the ids of batches made at `at` begin: every id below it is older."""
    return f"{int(at * 1000):012x}"


class BatchQueue(Generic[T]):
    """At most `capacity` items; `put` never waits, `take` waits for a batch."""

    __slots__ = ("_capacity", "_items", "_ready", "_waiting", "accepted", "dropped")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity
        self._items: deque[T] = deque()
        self._ready = asyncio.Event()
        # Whether a taker waits: only then does a put pay for waking it.
        self._waiting = False
        self.accepted = 0
        self.dropped = 0

    def put(self, item: T) -> bool:
        """Queue `item`; False (and counted in `dropped`) when the queue is full."""
        if len(self._items) >= self._capacity:
            self.dropped += 1
            return False
        self._items.append(item)
        self.accepted += 1
        if self._waiting:
            self._ready.set()
        return True

    @property
    def capacity(self) -> int:
        return self._capacity

    def __len__(self) -> int:
        return len(self._items)

    def take_now(self, most: int) -> list[T]:
        """Up to `most` items, oldest first, without waiting."""
        items = self._items
        return [items.popleft() for _ in range(min(most, len(items)))]

    def wake(self) -> None:
        """Make a waiting `take` return, with nothing if nothing came."""
        self._ready.set()

    async def take(self, most: int, *, linger: float = 0.0) -> list[T]:
        """Wait for an item (or `wake`), then give up to `most`, waiting up to `linger`
        seconds for a fuller batch (fewer, larger transactions under light load)."""
        if not self._items:
            self._ready.clear()
            self._waiting = True
            try:
                await self._ready.wait()
            finally:
                self._waiting = False
        if self._items and linger > 0 and len(self._items) < most:
            await asyncio.sleep(linger)
        return self.take_now(most)


class BatchLog(Protocol):
    """Where a Drainer notes which items each batch took, and when it was written
    (kurz.analytics.journal.ClickJournal)."""

    def assign(self, ident: str, count: int) -> bool: ...

    def committed(self, ident: str) -> None: ...


class Drainer(Generic[T]):
    """Writes a BatchQueue's items in batches, one `write` call (one transaction) each.

    `write(batch_id, items)` is called again with the same id after a failure. A
    batch takes what has queued up while the last one was written, up to `batch`
    items: the faster clicks come, the larger the batches, and the fewer rollup
    rows per click (docs/analytics.md).
    """

    def __init__(
        self,
        queue: BatchQueue[T],
        write: Callable[[str, list[T]], Awaitable[object]],
        *,
        batch: int = 5_000,
        linger: float = 0.05,
        retry_after: float = 1.0,
    ) -> None:
        self.queue = queue
        self._write = write
        self._batch = batch
        self._linger = linger
        self._retry_after = retry_after
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.written = 0
        self.failures = 0
        self.journal: BatchLog | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while not self._stopping:
            batch = await self.queue.take(self._batch, linger=self._linger)
            if batch:
                await self._write_until_done(batch)

    async def _write_until_done(self, batch: list[T]) -> None:
        ident = batch_id()
        journal = self.journal
        if journal is not None:
            # Before the write: a replay writes the batch again under this id, never
            # its clicks under a new one.
            journal.assign(ident, len(batch))

        def failed() -> None:
            self.failures += 1

        await until_done(
            lambda: self._write(ident, batch),
            what=f"writing {len(batch)} events",
            retry_after=self._retry_after,
            failed=failed,
        )
        if journal is not None:
            journal.committed(ident)
        self.written += len(batch)

    async def stop(self, *, grace: float = 10.0) -> None:
        """Stop taking, then write what is still queued (for up to `grace` seconds).

        A batch being written when stop() is called is finished, not cancelled: its
        transaction either commits or is retried.
        """
        self._stopping = True
        self.queue.wake()

        async def finish() -> None:
            if self._task is not None:
                await self._task
            while len(self.queue):
                await self._write_until_done(self.queue.take_now(self._batch))

        try:
            await asyncio.wait_for(finish(), grace)
        except TimeoutError:
            log.error("stopped with %d events unwritten", len(self.queue))
        finally:
            self._task = None
