"""The L2 nodes, against three real Redis servers: placement, versions, failures."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis.asyncio import Redis

from kurz.cache import FOREVER, CacheNodes
from kurz.cache.nodes import parse_node
from tests.support import RedisServer

PREFIX = "kurz:link:"


async def until(condition: Callable[[], bool | Awaitable[bool]], what: str) -> None:
    """Wait for `condition` (probes run every 50 ms here). The deadline only turns a
    hang into a failure: a loaded host may take seconds."""
    deadline = time.monotonic() + 60
    while True:
        result = condition()
        if result if isinstance(result, bool) else await result:
            return
        assert time.monotonic() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.025)


@pytest.fixture
async def nodes(redis_nodes: list[RedisServer]) -> AsyncIterator[CacheNodes]:
    cache = CacheNodes(
        [server.url for server in redis_nodes], timeout=0.2, fail_after=2, probe_interval=0.05
    )
    try:
        yield cache
    finally:
        await cache.close()


def direct(server: RedisServer) -> Redis:
    return Redis.from_url(server.url)


def server_of(redis_nodes: list[RedisServer], name: str) -> RedisServer:
    return next(server for server in redis_nodes if name.endswith(f":{server.port}"))


async def test_a_value_lives_on_the_node_the_ring_names(
    nodes: CacheNodes, redis_nodes: list[RedisServer]
) -> None:
    placed: dict[str, int] = {}
    for i in range(60):
        key = f"code{i}"
        assert await nodes.put(key, b"payload-%d" % i, version=1, ttl=60)
        node = nodes.node_for(key)
        assert node is not None
        placed[node.name] = placed.get(node.name, 0) + 1
        client = direct(server_of(redis_nodes, node.name))
        try:
            assert await client.get(PREFIX + key) == b"1|payload-%d" % i
        finally:
            await client.aclose()
        assert await nodes.get(key) == b"payload-%d" % i
    # All three nodes take a share.
    assert len(placed) == 3, placed


async def test_an_older_version_never_replaces_a_newer_one(nodes: CacheNodes) -> None:
    assert await nodes.put("k", b"v2", version=2, ttl=60)
    assert not await nodes.put("k", b"v1", version=1, ttl=60)
    assert not await nodes.put("k", b"v2 again", version=2, ttl=60)
    assert await nodes.get("k") == b"v2"
    assert await nodes.put("k", b"v3", version=3, ttl=60)
    assert await nodes.get("k") == b"v3"


async def test_a_tombstone_hides_older_versions_and_lets_the_new_one_in(
    nodes: CacheNodes, redis_nodes: list[RedisServer]
) -> None:
    assert await nodes.put("k", b"v1", version=1, ttl=60)
    await nodes.invalidate("k", 2)
    assert await nodes.get("k") is None
    # A reader that loaded version 1 before the change cannot put it back ...
    assert not await nodes.put("k", b"v1", version=1, ttl=60)
    # ... and one that loaded the change can.
    assert await nodes.put("k", b"v2", version=2, ttl=60)
    assert await nodes.get("k") == b"v2"
    # An invalidation older than what is held changes nothing.
    await nodes.invalidate("k", 1)
    assert await nodes.get("k") == b"v2"
    # A deletion hides every version there will be.
    await nodes.invalidate("k")
    assert not await nodes.put("k", b"v9", version=9, ttl=60)
    assert await nodes.get("k") is None
    node = nodes.node_for("k")
    assert node is not None
    client = direct(server_of(redis_nodes, node.name))
    try:
        assert await client.get(PREFIX + "k") == b"!%d" % FOREVER
    finally:
        await client.aclose()


async def test_invalidation_reaches_copies_on_every_node(
    nodes: CacheNodes, redis_nodes: list[RedisServer]
) -> None:
    # Copies a key leaves on other nodes while its own node is out.
    clients = [direct(server) for server in redis_nodes]
    try:
        for client in clients:
            await client.set(PREFIX + "k", b"1|old")
        await nodes.invalidate("k", 2)
        for client in clients:
            assert await client.get(PREFIX + "k") == b"!2"
    finally:
        for client in clients:
            await client.aclose()


async def test_a_dead_node_is_a_miss_then_leaves_the_ring_then_comes_back(
    nodes: CacheNodes, redis_nodes: list[RedisServer], caplog: pytest.LogCaptureFixture
) -> None:
    node = nodes.node_for("k")
    assert node is not None
    server = server_of(redis_nodes, node.name)
    assert await nodes.put("k", b"v1", version=1, ttl=60)
    server.kill()
    # Failures are misses, never errors; after fail_after (2) it leaves the ring.
    assert await nodes.get("k") is None
    assert node.name in nodes.ring
    assert await nodes.get("k") is None
    assert node.name not in nodes.ring
    assert node.out
    # Its keys now go to their next node.
    fallback = nodes.node_for("k")
    assert fallback is not None
    assert fallback.name != node.name
    assert await nodes.put("k", b"v1", version=1, ttl=60)
    assert await nodes.get("k") == b"v1"

    server.start()
    await until(lambda: node.name in nodes.ring, "the restarted node rejoins the ring")
    assert not node.out
    assert nodes.node_for("k") is node
    # It restarted empty: a miss, not an error.
    assert await nodes.get("k") is None
    assert "left the ring" in caplog.text
    assert "back in the ring" in caplog.text


async def test_a_node_that_was_unreachable_is_caught_up_before_it_is_back(
    redis_nodes: list[RedisServer],
) -> None:
    """A node that kept its data while unreachable (a partition, here SIGSTOP) must not
    serve what was invalidated meanwhile."""
    nodes = CacheNodes(
        [server.url for server in redis_nodes], timeout=0.1, fail_after=3, probe_interval=0.05
    )
    admin = None
    try:
        node = nodes.node_for("k")
        assert node is not None
        assert await nodes.put("k", b"v1", version=1, ttl=60)
        server = server_of(redis_nodes, node.name)
        admin = direct(server)
        server.pause()
        # The change happens while the node cannot hear of it: one failed invalidation
        # takes it out at once (it may hold the old value), not after fail_after reads.
        await nodes.invalidate("k", 2)
        assert node.out
        assert node.missed == {"k": 2}
        server.resume()
        await until(lambda: not node.out, "the node is back once it answers")
        assert node.missed == {}
        assert await nodes.get("k") is None
        assert await admin.get(PREFIX + "k") == b"!2"
    finally:
        if admin is not None:
            await admin.aclose()
        await nodes.close()


async def test_a_node_that_missed_too_much_is_emptied_before_it_is_back(
    redis_nodes: list[RedisServer],
) -> None:
    nodes = CacheNodes(
        [server.url for server in redis_nodes],
        timeout=0.1,
        fail_after=1,
        probe_interval=0.05,
        max_missed=3,
    )
    admin = None
    try:
        node = nodes.node_for("a")
        assert node is not None
        server = server_of(redis_nodes, node.name)
        admin = direct(server)
        await admin.set(PREFIX + "a", b"1|old")
        await admin.set("not-kurz", b"kept")
        server.pause()
        for key in ("a", "b", "c", "d", "e"):
            await nodes.invalidate(key, 2)
        assert node.flush
        assert node.missed == {}
        server.resume()
        await until(lambda: not node.out, "the node is back once it answers")
        assert await admin.get(PREFIX + "a") is None
        # Only kurz's keys: the node may hold others'.
        assert await admin.get("not-kurz") == b"kept"
    finally:
        if admin is not None:
            await admin.aclose()
        await nodes.close()


async def test_bounded_loads_send_a_key_past_a_busy_node(nodes: CacheNodes) -> None:
    bounded = CacheNodes(
        [f"redis://127.0.0.1:{node.name.rpartition(':')[2]}" for node in nodes.nodes.values()],
        balance=1.25,
    )
    try:
        home = bounded.node_for("k")
        assert home is not None
        assert bounded.node_for("k") is home
        # Busy: above 1.25 x the average of the requests in flight.
        home.in_flight = 10
        elsewhere = bounded.node_for("k")
        assert elsewhere is not None
        assert elsewhere is not home
    finally:
        await bounded.close()


def test_node_urls_name_the_ring_and_carry_weights() -> None:
    assert parse_node("redis://10.0.0.1:6380/0") == ("10.0.0.1:6380", 1, "redis://10.0.0.1:6380/0")
    assert parse_node("redis://h/0?weight=3&db=1") == ("h:6379", 3, "redis://h/0?db=1")
    with pytest.raises(ValueError, match="redis://"):
        parse_node("http://h:1")
    with pytest.raises(ValueError, match="weight"):
        parse_node("redis://h:1?weight=0")
    with pytest.raises(ValueError, match="listed twice"):
        CacheNodes(["redis://h:1", "redis://h:1/2"])


async def mget_calls(servers: list[RedisServer]) -> int:
    calls = 0
    for server in servers:
        client = direct(server)
        try:
            stats = await client.info("commandstats")
        finally:
            await client.aclose()
        calls += int(stats.get("cmdstat_mget", {}).get("calls", 0))
    return calls


async def test_reads_in_one_turn_of_the_loop_share_one_mget_per_node(
    nodes: CacheNodes, redis_nodes: list[RedisServer]
) -> None:
    keys = [f"code{i}" for i in range(50)]
    for i, key in enumerate(keys):
        await nodes.put(key, b"v%d" % i, version=1, ttl=60)
    before = await mget_calls(redis_nodes)
    found = await asyncio.gather(*(nodes.get(key) for key in keys), nodes.get("absent"))
    assert found == [b"v%d" % i for i in range(50)] + [None]
    assert await mget_calls(redis_nodes) - before == 3
    # One reader giving up leaves the others of its batch their answers.
    readers = [asyncio.create_task(nodes.get(key)) for key in keys[:10]]
    await asyncio.sleep(0)
    readers[0].cancel()
    assert await asyncio.gather(*readers[1:]) == [b"v%d" % i for i in range(1, 10)]
