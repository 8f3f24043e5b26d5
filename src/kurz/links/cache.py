"""Links' targets through the cache tiers (L1 in process, L2 on Redis nodes, SQL).

The tiers themselves are kurz.cache (ADR 0007); this module gives them the loaders
that read targets from the database, and is what the use cases tell of a change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence

from kurz.cache import (
    FOREVER,
    CacheNodes,
    InvalidationBus,
    Lifetimes,
    LRUCache,
    TieredCache,
    TinyLFUCache,
)
from kurz.config import Settings
from kurz.db import Database
from kurz.links import queries
from kurz.links.codes import cache_key
from kurz.links.target import Target, TargetCodec


def loader(db: Database) -> Callable[[str], Awaitable[Target | None]]:
    """The cache's last tier: the live link behind a cache key (kurz.links.codes.cache_key),
    from the database."""

    async def load(key: str) -> Target | None:
        async with db.read() as conn:
            return await queries.resolve(conn=conn, key=key)

    return load


def many_loader(db: Database) -> Callable[[Sequence[str]], Awaitable[dict[str, Target]]]:
    """The cache's batched refresh: the live links behind many codes, in one statement."""

    async def load_many(keys: Sequence[str]) -> dict[str, Target]:
        async with db.read() as conn:
            return await queries.resolve_many(conn=conn, keys=keys)

    return load_many


def target_cache(
    settings: Settings,
    db: Database,
    *,
    nodes: CacheNodes | None = None,
    bus: InvalidationBus | None = None,
) -> TieredCache[Target]:
    """L1 in this process, over L2 on `nodes` and the invalidation `bus` when given."""
    size = settings.redirect_cache_size
    l1: LRUCache[str, Target] = (
        TinyLFUCache(size) if settings.redirect_cache_admission == "tinylfu" else LRUCache(size)
    )
    return TieredCache(
        load=loader(db),
        load_many=many_loader(db),
        codec=TargetCodec(),
        l1=l1,
        l2=nodes,
        bus=bus,
        lifetimes=Lifetimes(
            l1=settings.redirect_cache_ttl,
            missing=settings.redirect_cache_missing_ttl,
            l2=settings.cache_ttl,
        ),
    )


class Targets:
    """Where codes lead, read through the tiers; told when a link changes. Each takes a
    cache key (kurz.links.codes.cache_key): a code and its domain."""

    __slots__ = ("cache", "l1")

    def __init__(self, cache: TieredCache[Target]) -> None:
        self.cache = cache
        # L1 itself: a read here never awaits.
        self.l1 = cache.l1

    async def find(self, code: str, *, counted: bool) -> Target | None:
        """The live target behind `code`. `counted`: this request has read L1 already
        (the fast path), so an admission filter there has counted it."""
        return await self.cache.get(code, counted=counted)

    def forget(self, code: str) -> None:
        """Drop `code` from this process's L1 only, to read it afresh."""
        self.cache.drop(code)

    async def changed(self, code: str, version: int = FOREVER) -> None:
        """`code` now has `version` (FOREVER: deleted); no tier may serve an older one."""
        await self.cache.invalidate(code, version)

    async def changed_many(self, changed: Iterable[tuple[str, int]]) -> None:
        """changed() for many keys (with their versions): their round trips to L2 and the
        bus side by side, and none at all where there are no such tiers."""
        cache = self.cache
        if cache.l2 is None and cache.bus is None:
            for key, _ in changed:
                cache.drop(key)
            return
        await asyncio.gather(*(cache.invalidate(key, version) for key, version in changed))

    async def changed_link(self, domain_id: int, code: str, version: int = FOREVER) -> None:
        """The link `code` of a domain now has `version` (FOREVER: deleted)."""
        await self.cache.invalidate(cache_key(domain_id, code), version)
