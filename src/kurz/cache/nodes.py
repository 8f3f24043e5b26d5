"""The L2 cache: several Redis nodes, each key on the node a consistent-hash ring picks.

A node that stops answering leaves the ring after a few failures in a row, and its
keys fall through to their next node (or, while the failures are being counted, to
the store behind the cache); a probe puts it back once it answers again. No call
here raises: a cache that fails is a cache that misses.

Values carry the version of what they cache, and a write-back never replaces a
newer version or a newer invalidation (a tombstone), so a slow reader cannot put
back a value that a concurrent update has already invalidated
(docs/decisions/0007-tiered-cache.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from kurz.cache.ring import HashRing
from kurz.extras import redis_error

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("kurz.cache")

# What a deletion invalidates: every version there will ever be.
FOREVER = 2**53


def _errors() -> tuple[type[Exception], ...]:
    return (redis_error(), OSError, asyncio.TimeoutError)


# A value is "<version>|<payload>", a tombstone "!<version>". A value may be written
# unless the key holds the same or a newer version, or a tombstone for a newer one.
_PUT = """
local current = redis.call('GET', KEYS[1])
local version = tonumber(ARGV[1])
if current then
  if string.sub(current, 1, 1) == '!' then
    if tonumber(string.sub(current, 2)) > version then return 0 end
  else
    local held = tonumber(string.sub(current, 1, string.find(current, '|', 1, true) - 1))
    if held >= version then return 0 end
  end
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2], 'PX', ARGV[3])
return 1
"""

# A tombstone for version N hides every value older than N, and outlives any read
# that started before the change (ARGV[2] ms).
_INVALIDATE = """
local current = redis.call('GET', KEYS[1])
local version = tonumber(ARGV[1])
if current then
  local held
  if string.sub(current, 1, 1) == '!' then
    held = tonumber(string.sub(current, 2))
  else
    held = tonumber(string.sub(current, 1, string.find(current, '|', 1, true) - 1))
  end
  if held >= version then return 0 end
end
redis.call('SET', KEYS[1], '!' .. ARGV[1], 'PX', ARGV[2])
return 1
"""


@dataclass(eq=False)
class Node:
    """One Redis node, as this process sees it."""

    name: str
    weight: int
    client: Redis
    failures: int = 0
    out: bool = False
    # Requests to it still running: the load the bounded-loads rule balances.
    in_flight: int = 0
    # Invalidations it could not take while out, replayed before it is back.
    missed: dict[str, int] = field(default_factory=dict)
    # It missed more invalidations than are remembered: empty its keys before it is back.
    flush: bool = False
    # Reads asked for since the last MGET was sent, each with the future it answers.
    batch: list[tuple[str, asyncio.Future[bytes | None]]] | None = None


def parse_node(url: str) -> tuple[str, int, str]:
    """A node's ring name ("host:port"), its weight (`?weight=N`), and its client URL.

    Clients that share kurz's cache name nodes the same way, so the ring places keys
    the same for them.
    """
    parts = urlsplit(url)
    if parts.scheme not in {"redis", "rediss"} or not parts.hostname:
        raise ValueError(f"a cache node must be a redis:// or rediss:// URL, not {url!r}")
    query = parse_qsl(parts.query)
    weights = [value for name, value in query if name == "weight"]
    weight = int(weights[-1]) if weights else 1
    if weight < 1:
        raise ValueError(f"a cache node's weight must be at least 1: {url!r}")
    rest = urlencode([(name, value) for name, value in query if name != "weight"])
    return f"{parts.hostname}:{parts.port or 6379}", weight, urlunsplit(parts._replace(query=rest))


def node_client(url: str, timeout: float, *, reads: bool = True) -> Redis:
    """A client for a cache node that gives up fast: no retries, short timeouts.

    The next node, or the store behind the cache, is a better retry than waiting.
    `reads=False` leaves reads unbounded, for a subscription that waits for messages.
    """
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    return Redis.from_url(
        url,
        socket_timeout=timeout if reads else None,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


class CacheNodes:
    """Keys spread over Redis nodes by a hash ring; failures are misses, never errors."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        prefix: str = "kurz:link:",
        points: int = 160,
        balance: float | None = None,
        timeout: float = 0.2,
        fail_after: int = 3,
        probe_interval: float = 1.0,
        tombstone_ttl: float = 60.0,
        max_missed: int = 10_000,
        clients: Mapping[str, Redis] | None = None,
    ) -> None:
        """`clients`: a client by URL (without `?weight`), shared with other parts and
        closed by their owner; by default each node gets its own (node_client)."""
        if not urls:
            raise ValueError("CacheNodes needs at least one node")
        self._own_clients = clients is None
        self.nodes: dict[str, Node] = {}
        for url in urls:
            name, weight, client_url = parse_node(url)
            if name in self.nodes:
                raise ValueError(f"cache node {name} is listed twice")
            client = node_client(client_url, timeout) if clients is None else clients[client_url]
            self.nodes[name] = Node(name, weight, client)
        self.ring = HashRing(
            {name: node.weight for name, node in self.nodes.items()}, points=points
        )
        self._prefix = prefix
        self._balance = balance
        self._fail_after = fail_after
        self._probe_interval = probe_interval
        self._tombstone_ms = int(tombstone_ttl * 1000)
        self._max_missed = max_missed
        # Probes and batched reads under way (the loop keeps only weak references).
        self._tasks: set[asyncio.Task[None]] = set()
        self._scripts = {
            name: (node.client.register_script(_PUT), node.client.register_script(_INVALIDATE))
            for name, node in self.nodes.items()
        }

    def node_for(self, key: str) -> Node | None:
        """The node that holds `key` now, or None when every node is out."""
        if not len(self.ring):
            return None
        if self._balance is None:
            return self.nodes[self.ring.node_for(key)]
        loads = {name: node.in_flight for name, node in self.nodes.items() if not node.out}
        return self.nodes[self.ring.node_for_bounded(key, loads, self._balance)]

    async def get(self, key: str) -> bytes | None:
        """The cached payload, or None (not cached, invalidated, or the node failed).

        Reads of one node asked for in the same turn of the event loop go out as one
        MGET (auto-pipelining): a command through redis-py costs the same CPU however
        many keys it carries, so under load a read pays a fraction of one (ADR 0007).
        """
        node = self.node_for(key)
        if node is None:
            return None
        loop = asyncio.get_running_loop()
        if node.batch is None:
            node.batch = []
            # Runs in the next turn, after every request of this one has added its key.
            send = loop.create_task(self._send(node))
            self._tasks.add(send)
            send.add_done_callback(self._tasks.discard)
        answer: asyncio.Future[bytes | None] = loop.create_future()
        node.batch.append((key, answer))
        raw = await answer
        if raw is None or raw[:1] == b"!":
            return None
        return raw.partition(b"|")[2]

    async def _send(self, node: Node) -> None:
        batch, node.batch = node.batch or [], None
        found: list[bytes | None] = [None] * len(batch)
        node.in_flight += 1
        try:
            found = await node.client.mget([self._prefix + key for key, _ in batch])
            node.failures = 0
        except _errors() as exc:
            self._failed(node, exc)
        finally:
            node.in_flight -= 1
            # Every reader gets an answer, even when this is cancelled (on close): a miss.
            for (_, answer), raw in zip(batch, found, strict=True):
                if not answer.done():  # its reader may have given up
                    answer.set_result(raw)

    async def put(self, key: str, payload: bytes, *, version: int, ttl: float) -> bool:
        """Cache `payload` unless the node holds a newer version or invalidation."""
        node = self.node_for(key)
        if node is None:
            return False
        put, _ = self._scripts[node.name]
        try:
            written = await put(
                keys=[self._prefix + key], args=[version, payload, max(1, int(ttl * 1000))]
            )
        except _errors() as exc:
            self._failed(node, exc)
            return False
        node.failures = 0
        return bool(written)

    async def invalidate(self, key: str, version: int = FOREVER) -> None:
        """Hide every cached value of `key` older than `version`, on every node.

        Every node, not just the key's: while a node was out its keys were cached on
        their next node, and would be served from there again if it left once more.
        """
        await asyncio.gather(
            *(self._invalidate_on(node, key, version) for node in self.nodes.values())
        )

    async def _invalidate_on(self, node: Node, key: str, version: int) -> None:
        if not node.out:
            _, invalidate = self._scripts[node.name]
            try:
                await invalidate(keys=[self._prefix + key], args=[version, self._tombstone_ms])
            except _errors() as exc:
                # It may still hold the old value: out at once, not after a few failures,
                # and back only once the probe has replayed this invalidation.
                self._take_out(node, exc)
            else:
                node.failures = 0
                return
        self._remember(node, key, version)

    def _remember(self, node: Node, key: str, version: int) -> None:
        if node.flush:
            return
        if len(node.missed) >= self._max_missed and key not in node.missed:
            node.missed.clear()
            node.flush = True
            return
        node.missed[key] = max(version, node.missed.get(key, 0))

    def _failed(self, node: Node, exc: BaseException) -> None:
        node.failures += 1
        if node.failures >= self._fail_after:
            self._take_out(node, exc)

    def _take_out(self, node: Node, exc: BaseException) -> None:
        if node.out:
            return
        node.out = True
        self.ring.remove(node.name)
        log.warning(
            "cache node %s left the ring (%s); its keys go to their next node until it answers",
            node.name, str(exc) or type(exc).__name__,
        )  # fmt: skip
        probe = asyncio.get_running_loop().create_task(self._probe(node))
        self._tasks.add(probe)
        probe.add_done_callback(self._tasks.discard)

    async def _probe(self, node: Node) -> None:
        """Wait until `node` answers, catch it up on what it missed, and put it back."""
        while True:
            await asyncio.sleep(self._probe_interval)
            try:
                await cast(Awaitable[bool], node.client.ping())
                await self._catch_up(node)
            except _errors():
                continue
            node.out = False
            node.failures = 0
            self.ring.add(node.name, node.weight)
            log.warning("cache node %s is back in the ring", node.name)
            return

    async def _catch_up(self, node: Node) -> None:
        if node.flush:
            async for name in node.client.scan_iter(match=self._prefix + "*", count=1_000):
                await node.client.unlink(name)
            node.flush = False
            node.missed.clear()
            return
        _, invalidate = self._scripts[node.name]
        while node.missed:
            key, version = next(iter(node.missed.items()))
            await invalidate(keys=[self._prefix + key], args=[version, self._tombstone_ms])
            # Only now: a failure above leaves it to be replayed by the next probe.
            if node.missed.get(key) == version:
                del node.missed[key]

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for node in self.nodes.values():
            if self._own_clients:
                await node.client.aclose()
