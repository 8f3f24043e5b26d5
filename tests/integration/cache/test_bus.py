"""The invalidation bus over real Redis nodes: delivery, and losing nodes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from kurz.cache import InvalidationBus
from tests.integration.cache.test_nodes import until
from tests.support import RedisServer


@dataclass
class Listener:
    keys: list[str] = field(default_factory=list)
    gaps: int = 0

    def on_key(self, key: str) -> None:
        self.keys.append(key)

    def on_gap(self) -> None:
        self.gaps += 1


@pytest.fixture
async def pair(
    redis_nodes: list[RedisServer],
) -> AsyncIterator[tuple[InvalidationBus, InvalidationBus, Listener]]:
    urls = [server.url for server in redis_nodes[:2]]
    # kurz's heartbeat: a killed node closes the connection, which is noticed at once;
    # a short one would take a loaded host's pause for a silent node.
    sender, receiver = (InvalidationBus(urls, heartbeat=1.0) for _ in range(2))
    heard = Listener()
    await sender.start(on_key=lambda key: None, on_gap=lambda: None)
    await receiver.start(on_key=heard.on_key, on_gap=heard.on_gap)
    await until(lambda: receiver.listening, "the receiver subscribes")
    # Each node's subscription is up before the test starts.
    await until(lambda: receiver.subscriptions == 2, "both subscriptions are up")
    try:
        yield sender, receiver, heard
    finally:
        await sender.close()
        await receiver.close()


async def test_a_key_published_once_reaches_the_other_process_on_every_node(
    pair: tuple[InvalidationBus, InvalidationBus, Listener],
) -> None:
    sender, receiver, heard = pair
    assert await sender.publish("abc") == 2
    await until(lambda: heard.keys == ["abc", "abc"], "the key arrives over both nodes")
    assert heard.gaps == 0
    # Counted as sent once per node that took it, and as heard once per node heard on.
    assert (sender.sent, receiver.heard) == (2, 2)


async def test_losing_one_node_loses_no_message(
    pair: tuple[InvalidationBus, InvalidationBus, Listener], redis_nodes: list[RedisServer]
) -> None:
    sender, receiver, heard = pair
    redis_nodes[0].kill()
    assert await sender.publish("abc") == 1
    await until(lambda: "abc" in heard.keys, "the key arrives over the live node")
    assert receiver.listening
    # Still one subscription up: nothing could have been missed.
    assert heard.gaps == 0


async def test_losing_every_node_is_a_gap_and_so_is_coming_back(
    pair: tuple[InvalidationBus, InvalidationBus, Listener], redis_nodes: list[RedisServer]
) -> None:
    sender, receiver, heard = pair
    redis_nodes[0].kill()
    redis_nodes[1].kill()
    await until(lambda: not receiver.listening, "the receiver knows it hears nothing")
    assert heard.gaps == 1
    assert await sender.publish("lost") == 0
    redis_nodes[1].start()
    await until(lambda: receiver.listening, "the receiver subscribes again")
    assert heard.gaps == 2
    assert await sender.publish("abc") == 1
    await until(lambda: "abc" in heard.keys, "keys arrive again")
    assert "lost" not in heard.keys


async def test_a_silent_node_is_given_up_on(redis_nodes: list[RedisServer]) -> None:
    """A node that neither sends nor answers (stopped, as behind a dead link)."""
    bus = InvalidationBus([redis_nodes[0].url], heartbeat=0.5)
    heard = Listener()
    try:
        await bus.start(on_key=heard.on_key, on_gap=heard.on_gap)
        await until(lambda: bus.listening, "subscribed")
        redis_nodes[0].pause()
        await until(lambda: not bus.listening, "the silence is noticed")
        assert heard.gaps == 1
    finally:
        redis_nodes[0].resume()
        await bus.close()
