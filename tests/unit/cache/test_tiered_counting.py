"""A request is counted once by an L1 with admission, however many times it is read."""

from __future__ import annotations

from kurz.cache import TieredCache, TinyLFUCache


class Codec:
    def encode(self, value: int) -> bytes:
        return str(value).encode()

    def decode(self, payload: bytes) -> int:
        return int(payload)

    def version(self, value: int) -> int:
        return 1


async def load(key: str) -> int:
    return len(key)


async def test_a_read_marked_counted_does_not_count_again() -> None:
    l1: TinyLFUCache[str, int] = TinyLFUCache(4)
    for key in ("a", "b"):
        l1.put(key, 1)  # half full: counting has started
    cache = TieredCache(load=load, codec=Codec(), l1=l1)
    assert await cache.get("a", counted=True) == 1
    assert l1.sketch.estimate("a") == 0
    assert await cache.get("a") == 1
    assert l1.sketch.estimate("a") == 1
    # A miss read through to the load, marked counted, is not counted either.
    assert await cache.get("zzz", counted=True) == 3
    assert l1.sketch.estimate("zzz") == 0
