"""Invalidations for every process's L1, broadcast over Redis pub/sub.

A message goes out on every node and each process listens on every node, so losing
one node loses no message; a key heard twice is dropped twice, which is harmless.
Pub/sub keeps nothing for a listener that was away, so a listener that was cut off
The messages a process can miss are those sent while it had no subscription up at
all: it tells its owner so (`on_gap`) when that starts and when it ends, and
`listening` says whether any message can reach it now.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from kurz.cache.nodes import node_client
from kurz.extras import redis_error

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

log = logging.getLogger("kurz.cache")


def _errors() -> tuple[type[Exception], ...]:
    return (redis_error(), OSError, asyncio.TimeoutError)


def _ignore(_key: str) -> None:
    pass


def _nothing() -> None:
    pass


class InvalidationBus:
    """Publishes keys to drop, and hands the keys other processes publish to `on_key`."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        channel: str = "kurz:invalidate",
        timeout: float = 0.2,
        heartbeat: float = 1.0,
        publishers: Mapping[str, Redis] | None = None,
    ) -> None:
        """`publishers`: a client by URL to publish with, shared with other parts and
        closed by their owner; each subscription has a connection of its own anyway."""
        if not urls:
            raise ValueError("InvalidationBus needs at least one Redis URL")
        self._own_publishers = publishers is None
        self.channel = channel
        self._urls = list(urls)
        self._on_key: Callable[[str], None] = _ignore
        self._on_gap: Callable[[], None] = _nothing
        self._timeout = timeout
        self._heartbeat = heartbeat
        self._publishers = [
            node_client(url, timeout) if publishers is None else publishers[url]
            for url in self._urls
        ]
        self._live: set[int] = set()
        self._deaf = False
        self._tasks: list[asyncio.Task[None]] = []
        self._subscribed = asyncio.Event()
        # Messages the nodes took, and messages heard and handed to on_key (once per
        # node each), for /metrics: a listener subscribed on every node whose `heard`
        # has caught up with the publishers' `sent` has acted on all they sent.
        self.sent = 0
        self.heard = 0

    @property
    def listening(self) -> bool:
        """Whether at least one node's subscription is up."""
        return bool(self._live)

    @property
    def subscriptions(self) -> int:
        """How many nodes' subscriptions are up."""
        return len(self._live)

    async def start(
        self,
        *,
        on_key: Callable[[str], None],
        on_gap: Callable[[], None],
        wait: float = 1.0,
    ) -> None:
        """Hand every key heard to `on_key`; wait up to `wait` s for the first subscription.

        `on_gap` is called when messages may have been missed: the last subscription
        was lost, or one came back after none was up.
        """
        self._on_key, self._on_gap = on_key, on_gap
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._listen(i)) for i in range(len(self._urls))]
        try:
            await asyncio.wait_for(self._subscribed.wait(), wait)
        except TimeoutError:
            log.warning("no cache node answered the invalidation subscription yet")

    async def publish(self, key: str) -> int:
        """Send `key` on every node that answers; the number of nodes that took it."""
        sent = await asyncio.gather(*(self._publish_on(client, key) for client in self._publishers))
        return sum(sent)

    async def _publish_on(self, client: Redis, key: str) -> int:
        try:
            await client.publish(self.channel, key)
        except _errors():
            return 0
        self.sent += 1
        return 1

    async def _listen(self, index: int) -> None:
        while True:
            client = node_client(self._urls[index], self._timeout, reads=False)
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                await self._receive(pubsub, index)
            except _errors() as exc:
                if index in self._live:
                    self._live.discard(index)
                    log.warning("invalidation subscription to %s lost: %s", self._urls[index], exc)
                    if not self._live:
                        # Deaf: what is published from now on cannot reach this process.
                        self._deaf = True
                        self._on_gap()
            finally:
                await pubsub.aclose()  # type: ignore[no-untyped-call]
                await client.aclose()
            await asyncio.sleep(self._heartbeat)

    async def _receive(self, pubsub: PubSub, index: int) -> None:
        heard = time.monotonic()
        while True:
            message = await pubsub.get_message(timeout=self._heartbeat)
            now = time.monotonic()
            if message is None:
                # Silence: ask. A node that neither sends nor answers is as good as gone.
                if now - heard > 3 * self._heartbeat:
                    raise TimeoutError("no answer to the heartbeat")
                await pubsub.ping()
                continue
            heard = now
            kind = message["type"]
            if kind == "subscribe":
                self._live.add(index)
                self._subscribed.set()
                if self._deaf:
                    # Back after a time with no subscription at all: what was published
                    # then never arrived.
                    self._deaf = False
                    self._on_gap()
            elif kind == "message":
                data = message["data"]
                self._on_key(data.decode() if isinstance(data, bytes) else str(data))
                self.heard += 1

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._live.clear()
        if self._own_publishers:
            for client in self._publishers:
                await client.aclose()
