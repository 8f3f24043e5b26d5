"""Caches: an in-process LRU (L1). Depends on nothing in kurz.links."""

from kurz.cache.lru import MISSING, NOT_CACHED, Absent, LRUCache, Stats

__all__ = ["MISSING", "NOT_CACHED", "Absent", "LRUCache", "Stats"]
