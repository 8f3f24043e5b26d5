"""Clicks through a Redis Stream, when kurz is scaled out (KURZ_REDIS_URL set).

Web processes queue clicks in memory as in the embedded setup, and their Drainer
hands each batch to `StreamSink`: one XADD per batch, an entry holding the batch's
id and its events. Consumers of one consumer group, in the workers, read entries,
record them (kurz.analytics.store) and acknowledge them only after the transaction
has committed. A consumer that dies leaves its entries pending; another claims them
once they have been idle for `claim_idle` seconds (XAUTOCLAIM) and records them
again. The store has the batch ids, so a batch recorded before the death is skipped:
at-least-once delivery, counted exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kurz.analytics.events import ClickEvent, decode, encode
from kurz.analytics.queue import until_done
from kurz.analytics.store import Batch, ClickStore
from kurz.extras import redis_error

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("kurz.analytics")

STREAM = "kurz:clicks"
GROUP = "kurz-recorders"
# Entries (batches) the stream keeps at most, when no consumer reads it: with
# batches of up to a thousand clicks, a bound on Redis's memory that no working
# setup comes near. Past it, the oldest entries are dropped.
MAX_ENTRIES = 100_000


class StreamSink:
    """A Drainer's `write` in the scaled-out setup: one XADD per batch."""

    def __init__(self, redis: Redis, *, key: str = STREAM, max_entries: int = MAX_ENTRIES):
        self._redis = redis
        self._key = key
        self._max_entries = max_entries

    async def __call__(self, batch_id: str, events: list[ClickEvent]) -> None:
        await self._redis.xadd(
            self._key,
            {"id": batch_id, "events": encode(events)},
            maxlen=self._max_entries,
            approximate=True,
        )


class StreamConsumer:
    """Reads click batches as one consumer of the group, records them, acknowledges."""

    def __init__(
        self,
        redis: Redis,
        store: ClickStore,
        *,
        key: str = STREAM,
        group: str = GROUP,
        name: str | None = None,
        count: int = 50,
        block: float = 1.0,
        claim_idle: float = 30.0,
        claim_every: float = 5.0,
        trim_every: float = 30.0,
        retry_after: float = 1.0,
    ) -> None:
        self._redis = redis
        self._store = store
        self._key = key
        self._group = group
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self._count = count
        self._block_ms = max(1, int(block * 1000))
        self._claim_idle_ms = int(claim_idle * 1000)
        self._claim_every = claim_every
        self._trim_every = trim_every
        self._retry_after = retry_after
        self._stopping = False
        # Counters, for tests and the operator.
        self.recorded = 0
        self.entries = 0
        self.claimed = 0

    async def ensure_group(self) -> None:
        try:
            # From the stream's start: entries added before any consumer existed
            # are counted too.
            await self._redis.xgroup_create(self._key, self._group, id="0", mkstream=True)
        except _response_error() as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def stop(self) -> None:
        """Finish the entries in hand, acknowledge them, and return from `run`."""
        self._stopping = True

    async def run(self) -> None:
        """Consume until `stop`; Redis being away is waited out, never fatal."""
        ready = False
        next_claim = next_trim = time.monotonic()
        while not self._stopping:
            try:
                if not ready:
                    await self.ensure_group()
                    # Entries this name read and never acknowledged (a restart under
                    # the same name): first, as nobody else may claim them for a while.
                    await self._handle(await self._read("0"))
                    ready = True
                await self._handle(await self._read(">"))
                now = time.monotonic()
                if now >= next_claim:
                    next_claim = now + self._claim_every
                    await self._claim()
                if now >= next_trim:
                    next_trim = now + self._trim_every
                    await self._trim()
            except (redis_error(), OSError) as exc:
                # Unacknowledged entries stay pending in the stream: nothing is lost.
                # A Redis that comes back empty (no persistence) has no group: make it
                # again, from the stream's start, before reading.
                ready = False
                log.warning(
                    "the click stream is out of reach (%s); trying again in %s s",
                    exc,
                    self._retry_after,
                )
                await asyncio.sleep(self._retry_after)

    async def drain(self) -> None:
        """Record every entry the group has not yet handed out, without waiting for new
        ones, then return: what `run` does for a stream that stops growing."""
        await self.ensure_group()
        while entries := await self._read(">", block=False):
            await self._handle(entries)

    async def _read(
        self, start: str, *, block: bool = True
    ) -> list[tuple[bytes, dict[bytes, bytes]]]:
        answer = await self._redis.xreadgroup(
            self._group,
            self.name,
            {self._key: start},
            count=self._count,
            block=self._block_ms if block and start != "0" else None,
        )
        if not answer:
            return []
        entries: list[tuple[bytes, dict[bytes, bytes]]] = answer[0][1]
        return entries

    async def _claim(self) -> None:
        """Take over entries idle for longer than `claim_idle`: their consumer died."""
        start = "0-0"
        while True:
            answer: list[Any] = await self._redis.xautoclaim(
                self._key,
                self._group,
                self.name,
                min_idle_time=self._claim_idle_ms,
                start_id=start,
                count=self._count,
            )
            start, entries = answer[0], answer[1]
            if entries:
                self.claimed += len(entries)
                log.info("claimed %d click batches from a consumer that stopped", len(entries))
                await self._handle(entries)
            if start in (b"0-0", "0-0") or self._stopping:
                return

    async def _handle(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        if not entries:
            return
        batches: list[Batch] = []
        for _entry, fields in entries:
            # An entry trimmed away while pending comes back without fields.
            if fields:
                batches.append((fields[b"id"].decode(), decode(fields[b"events"])))
        if batches:
            self.recorded += await until_done(
                lambda: self._store.record(batches),
                what=f"recording {len(batches)} click batches",
                retry_after=self._retry_after,
            )
        # Only now, after the commit: a death before this line leaves the entries
        # pending, and whoever claims them finds their batch ids recorded.
        await self._redis.xack(self._key, self._group, *(entry for entry, _ in entries))
        self.entries += len(entries)

    async def _trim(self) -> None:
        """Drop the entries every consumer is done with: older than the oldest one
        pending, and than the last one handed out."""
        try:
            groups = await self._redis.xinfo_groups(self._key)
            pending = await self._redis.xpending(self._key, self._group)
        except _response_error():
            return
        delivered = [g["last-delivered-id"] for g in groups if _name(g["name"]) == self._group]
        if not delivered:
            return
        oldest = _id(delivered[0])
        if pending["pending"]:
            oldest = min(oldest, _id(pending["min"]))
        if oldest > (0, 0):
            await self._redis.xtrim(self._key, minid=f"{oldest[0]}-{oldest[1]}", approximate=True)


@dataclass(frozen=True, slots=True)
class Backlog:
    """Click batches in the stream that no recorder has finished with."""

    # Never handed to a recorder; None when Redis cannot tell (entries deleted meanwhile).
    unread: int | None
    # Handed to a recorder and not yet acknowledged.
    pending: int


async def backlog(redis: Redis, *, key: str = STREAM, group: str = GROUP) -> Backlog:
    """The stream's backlog, for the operator (RedisError if Redis does not answer)."""
    try:
        groups = await redis.xinfo_groups(key)
    except _response_error():  # No stream yet: no click was ever queued.
        return Backlog(0, 0)
    for found in groups:
        if _name(found["name"]) == group:
            lag = found.get("lag")
            return Backlog(None if lag is None else int(lag), int(found["pending"]))
    # No recorder has started yet: every entry is unread.
    return Backlog(int(await redis.xlen(key)), 0)


async def warn_unless_persistent(redis: Redis) -> None:
    """Warn when the stream's Redis keeps nothing on disk: the clicks not yet consumed
    would be lost if it restarted (docs/analytics.md, "When something fails")."""
    fix = "give that Redis appendonly yes (docs/analytics.md)"
    try:
        appendonly = await redis.config_get("appendonly")
        save = await redis.config_get("save")
    except (redis_error(), OSError) as exc:
        # Managed Redis services often rename or forbid CONFIG.
        log.warning(
            "could not check whether the click stream's Redis keeps its data on disk "
            "(CONFIG GET: %s); if it does not, clicks not yet consumed are lost if it "
            "restarts: %s",
            exc,
            fix,
        )
        return
    if _name(appendonly.get("appendonly", "no")) == "yes" or _name(save.get("save", "")):
        return
    log.warning(
        "the click stream's Redis keeps nothing on disk (appendonly no, no save points): "
        "clicks not yet consumed are lost if it restarts; %s",
        fix,
    )


def _response_error() -> type[Exception]:
    # Evaluated only once something was raised: kurz on SQLite never imports redis.
    from redis.exceptions import ResponseError

    return ResponseError


def _name(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _id(value: bytes | str) -> tuple[int, int]:
    millis, _, seq = _name(value).partition("-")
    return int(millis), int(seq or 0)
