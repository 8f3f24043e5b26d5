"""The domains use cases (admins'): what the REST views and the CLI both call.

After each change, this process's registry is reloaded, and the others are told over
the invalidation bus; those it cannot reach (the CLI has no bus, a process may be
deaf a while) reload theirs within KURZ_REDIRECT_CACHE_TTL (kurz.links.domains).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from kurz.clock import utcnow
from kurz.db import READ_COMMITTED, Database
from kurz.db.tables import domains, links
from kurz.errors import Problem, invalid, not_found
from kurz.links.domain_models import DomainCreate, DomainList, DomainRead, DomainUpdate
from kurz.links.domains import CHANGED, Domains, rows
from kurz.links.hosts import normalize_host
from kurz.types import Clock


def _read(row: Any) -> DomainRead:
    return DomainRead.model_validate(row, from_attributes=True)


def _missing(host: str) -> Problem:
    return not_found(f"No domain '{host[:260]}'.")


class DomainAdmin:
    """Add, change, list and remove domains."""

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        registry: Domains,
        announce: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.registry = registry
        # Tells the other processes (the invalidation bus); None: nobody to tell.
        self.announce = announce

    async def _changed(self) -> None:
        await self.registry.reload()
        if self.announce is not None:
            await self.announce(CHANGED)

    async def list_(self) -> DomainList:
        async with self.db.read() as conn:
            found = await rows(conn)
        return DomainList(items=[_read(row) for row in found], default=self.registry.default.host)

    async def create(self, domain_in: DomainCreate) -> DomainRead:
        if domain_in.host == self.registry.default.host:
            raise _taken(domain_in.host, "is the default domain (KURZ_BASE_URL's host)")
        now = utcnow(self.clock)
        async with self.db.write(READ_COMMITTED) as conn:
            exists = await conn.execute(
                sa.select(domains.c.id).where(domains.c.host == domain_in.host)
            )
            if exists.first() is not None:
                raise _taken(domain_in.host, "is a domain of kurz's already")
            row = (
                await conn.execute(
                    sa.insert(domains)
                    .values(**domain_in.model_dump(), created_at=now, updated_at=now)
                    .returning(*domains.c)
                )
            ).one()
        await self._changed()
        return _read(row)

    async def update(self, host: str, domain_in: DomainUpdate) -> DomainRead:
        changes = domain_in.model_dump(exclude_unset=True)
        if changes.get("https", False) is None:
            raise invalid("https", "must not be null")
        async with self.db.write(READ_COMMITTED) as conn:
            row = (
                await conn.execute(
                    sa.update(domains)
                    .where(domains.c.host == _named(host))
                    .values(**changes, updated_at=utcnow(self.clock))
                    .returning(*domains.c)
                )
            ).first()
        if row is None:
            raise _missing(host)
        await self._changed()
        return _read(row)

    async def delete(self, host: str) -> None:
        """Remove a domain that has no live links (else 409 domain-in-use)."""
        async with self.db.write(READ_COMMITTED) as conn:
            domain_id = await _id(conn, host)
            live = await conn.execute(
                sa.select(sa.func.count())
                .select_from(links)
                .where(links.c.domain_id == domain_id, links.c.deleted_at.is_(None))
            )
            count = int(live.scalar_one())
            if count:
                raise Problem(
                    409,
                    "domain-in-use",
                    "Domain in use",
                    f"The domain '{_named(host)}' has {count} live links; delete or move "
                    "them first.",
                )
            await conn.execute(sa.delete(domains).where(domains.c.id == domain_id))
        await self._changed()


def _named(host: str) -> str:
    """A host as the path names it, in its one form (or as given, to match nothing)."""
    return normalize_host(host) or host


async def _id(conn: AsyncConnection, host: str) -> int:
    found = await conn.execute(sa.select(domains.c.id).where(domains.c.host == _named(host)))
    domain_id = found.scalar_one_or_none()
    if domain_id is None:
        raise _missing(host)
    return int(domain_id)


def _taken(host: str, why: str) -> Problem:
    return Problem(
        409,
        "domain-taken",
        "Domain taken",
        f"'{host}' {why}.",
        errors=[{"field": "host", "in": "body", "message": why}],
    )
