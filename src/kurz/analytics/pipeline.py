"""Click analytics in one kurz process, wired from the settings.

Embedded (no KURZ_REDIS_URL): the redirect path queues events in memory, a Drainer
records them in batches into the database. Scaled out: the Drainer adds each batch
to a Redis Stream instead, and consumers in the workers record them
(kurz.analytics.stream). Either way a redirect only ever appends to a deque, and to
this process's click journal, which the next start (or another process on the host)
replays if this one dies before writing what it queued (ADR 0014).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from ipaddress import IPv4Network, IPv6Network
from typing import TYPE_CHECKING

from kurz.analytics.events import ClickEvent, DailySalt
from kurz.analytics.journal import ClickJournal, Place, Replayer
from kurz.analytics.queue import BatchQueue, Drainer
from kurz.analytics.recorder import ClickRecorder
from kurz.analytics.salts import SaltKeeper
from kurz.analytics.store import ClickStore, Follower
from kurz.analytics.stream import StreamConsumer, StreamSink, warn_unless_persistent
from kurz.db import Database
from kurz.types import Clock

if TYPE_CHECKING:
    from redis.asyncio import Redis

# A batch to the database takes what queued while the last was written and for
# DATABASE_LINGER seconds more, up to DATABASE_BATCH clicks: the larger the batch,
# the fewer rollup rows per click (docs/analytics.md has bench-record's figures).
# A batch also pays for its statements' round trips to the thread that runs SQLite,
# each of which waits for a round of the event loop; a small batch under load then
# records more slowly than redirects arrive (docs/analytics.md, "When the batch
# falls behind"), and a large one shares the same wait among more clicks. The batch
# is worked on in slices (kurz.analytics.pacing), so a larger one does not hold the
# loop longer at a time. To the stream, smaller entries, read in groups by the
# consumers.
DATABASE_BATCH = 50_000
DATABASE_LINGER = 0.5
STREAM_BATCH = 1_000


class Analytics:
    """The recorder the redirect path calls, and what carries its events away."""

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        queue_size: int,
        redis: Redis | None = None,
        claim_idle: float = 30.0,
        journal: Place | None = None,
        # kurz.geo's Locator.place.
        locate: Callable[[str], tuple[str | None, str | None]] | None = None,
        country_header: str = "",
        trusted: tuple[IPv4Network | IPv6Network, ...] = (),
        # Hears each batch's clicks in its transaction (kurz.webhooks' link.clicked).
        follower: Follower | None = None,
    ) -> None:
        self.store = ClickStore(db, follower=follower)
        self.salt = DailySalt(clock)
        self.queue: BatchQueue[ClickEvent] = BatchQueue(queue_size)
        self.recorder = ClickRecorder(
            self.queue,
            clock=clock,
            salt=self.salt,
            locate=locate,
            country_header=country_header,
            trusted=trusted,
        )
        self._salts = SaltKeeper(db, self.salt, clock)
        # Owned by the caller (kurz.bootstrap), which closes it.
        self.redis = redis
        write: Callable[[str, list[ClickEvent]], Awaitable[object]]
        if redis is not None:
            write = StreamSink(redis)
            self.drainer = Drainer(self.queue, write, batch=STREAM_BATCH)
        else:
            write = self._to_database
            self.drainer = Drainer(self.queue, write, batch=DATABASE_BATCH, linger=DATABASE_LINGER)
        # Made on the first click: a process that serves none (a worker) keeps none.
        self.journal: ClickJournal | None = None
        self.replayer: Replayer | None = None
        if journal is not None:
            self.journal = ClickJournal(
                journal.directory, journal.fingerprint, private=journal.private
            )
            self.recorder.journal = self.drainer.journal = self.journal
            self.replayer = Replayer(
                journal.directory, journal.fingerprint, write, own=lambda: self._journal_name()
            )
        self._replaying: asyncio.Task[None] | None = None
        self._claim_idle = claim_idle
        self.consumer: StreamConsumer | None = None
        self._consuming: asyncio.Task[None] | None = None
        self.persistence_check: asyncio.Task[None] | None = None

    def _journal_name(self) -> str | None:
        return self.journal.name if self.journal is not None else None

    async def _to_database(self, batch_id: str, events: list[ClickEvent]) -> None:
        # What is still queued behind this batch: the further behind, the larger the
        # share of the event loop the batch takes.
        behind = len(self.queue) / self.queue.capacity
        await self.store.record([(batch_id, events)], behind=behind)

    async def start(self) -> None:
        await self._salts.start()
        self.drainer.start()
        if self.redis is not None:
            # In the background: a Redis that is away must not hold up the start.
            self.persistence_check = asyncio.get_running_loop().create_task(
                warn_unless_persistent(self.redis)
            )
        if self.replayer is not None:
            # The journals of processes that died, this one's predecessor among them.
            self._replaying = asyncio.get_running_loop().create_task(self.replayer.run())

    def start_consumer(self, name: str | None = None) -> StreamConsumer | None:
        """In a worker: record what web processes add to the stream (scaled out only)."""
        if self.redis is None:
            return None
        self.consumer = StreamConsumer(
            self.redis, self.store, name=name, claim_idle=self._claim_idle
        )
        self._consuming = asyncio.get_running_loop().create_task(self.consumer.run())
        return self.consumer

    async def stop(self, *, grace: float = 10.0) -> None:
        """Every click queued so far is written (to the database or the stream), and
        the batches a consumer holds are recorded and acknowledged, before this returns."""
        await self.drainer.stop(grace=grace)
        if self._replaying is not None:
            # Cut short, a replay is done again, whole, by the next process.
            self._replaying.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._replaying
            self._replaying = None
        if self.journal is not None:
            self.journal.close()
        if self.consumer is not None and self._consuming is not None:
            self.consumer.stop()
            await self._consuming
            self._consuming = None
        await self._salts.stop()
        if self.persistence_check is not None:
            self.persistence_check.cancel()
            await asyncio.wait([self.persistence_check])
