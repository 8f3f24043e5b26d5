"""Caches: an in-process LRU (L1) and a consistent-hash ring. Depends on nothing in kurz.links."""

from kurz.cache.lru import MISSING, NOT_CACHED, Absent, LRUCache, Stats
from kurz.cache.ring import HashRing

__all__ = ["MISSING", "NOT_CACHED", "Absent", "HashRing", "LRUCache", "Stats"]
