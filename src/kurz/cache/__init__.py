"""Caches: an in-process LRU (L1), Redis nodes on a hash ring (L2), and both as tiers.

Depends on nothing in kurz.links.
"""

from kurz.cache.bus import InvalidationBus
from kurz.cache.lru import MISSING, NOT_CACHED, Absent, LRUCache, Stats
from kurz.cache.nodes import FOREVER, CacheNodes
from kurz.cache.ring import HashRing
from kurz.cache.sketch import CountMinSketch
from kurz.cache.tiered import Codec, Lifetimes, TieredCache
from kurz.cache.tinylfu import TinyLFUCache

__all__ = [
    "FOREVER",
    "MISSING",
    "NOT_CACHED",
    "Absent",
    "CacheNodes",
    "Codec",
    "CountMinSketch",
    "HashRing",
    "InvalidationBus",
    "LRUCache",
    "Lifetimes",
    "Stats",
    "TieredCache",
    "TinyLFUCache",
]
