"""Domains: the hosts kurz answers for, and the registry each process keeps of them.

The default domain is KURZ_BASE_URL's host (id 0, no row); the others are rows of
`domains`, managed by admins (kurz.links.domain_service). A visit's domain is picked
by its Host header (`Domains.of`), from memory: the registry is loaded at start,
again after a change made in this process, and every KURZ_REDIRECT_CACHE_TTL seconds
for changes made in another (docs/domains.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from kurz.db import Database
from kurz.db.tables import domains
from kurz.links.codes import cache_key
from kurz.links.hosts import host_of_header, normalize_host

log = logging.getLogger("kurz")

# What the invalidation bus carries when a domain changed: no code has a '!'.
CHANGED = "!domains"
# Host headers remembered with the domain they name, at most: a flood of made-up
# hosts empties the memo instead of growing it.
_SEEN = 1_024
# The redirects a domain may have, by the visit they answer.
REDIRECTS = ("root", "not_found", "expired", "used_up")


@dataclass(frozen=True, slots=True)
class Redirects:
    """Where visits go instead of kurz's own pages; None: kurz's page."""

    root: str | None = None
    not_found: str | None = None
    expired: str | None = None
    used_up: str | None = None

    def over(self, defaults: Redirects) -> Redirects:
        """These, each falling back to `defaults`' where it has none."""
        return Redirects(*(getattr(self, name) or getattr(defaults, name) for name in REDIRECTS))


@dataclass(frozen=True, slots=True)
class Domain:
    """One host kurz answers for, as the redirect path needs it."""

    id: int
    host: str
    # Where its short URLs start: scheme and host (and, for the default, KURZ_BASE_URL).
    origin: str
    # Its redirects, the instance-wide ones filled in.
    redirects: Redirects
    # Its links' cache keys start with this (kurz.links.codes.cache_key).
    prefix: str

    def key(self, code: str) -> str:
        return self.prefix + code

    def short_url(self, code: str) -> str:
        return f"{self.origin}/{code}"


def origin(host: str, https: bool) -> str:
    return f"{'https' if https else 'http'}://{host}"


def default_domain(base_url: str, redirects: Redirects) -> Domain:
    host = normalize_host(urlsplit(base_url).netloc) or ""
    return Domain(0, host, base_url.rstrip("/"), redirects, "")


class Domains:
    """Every domain, by id and by host, in memory: what the redirect path asks."""

    __slots__ = (
        "_by_host",
        "_by_id",
        "_reloads",
        "_seen",
        "db",
        "default",
        "instance",
        "one",
        "refuse",
    )

    def __init__(
        self, *, db: Database, base_url: str, instance: Redirects, refuse_unknown: bool
    ) -> None:
        self.db = db
        self.instance = instance
        self.default = default_domain(base_url, instance)
        # A Host that names no domain: refused (404), or served as the default domain.
        self.refuse = refuse_unknown
        self._by_id: dict[int, Domain] = {0: self.default}
        self._by_host: dict[str, Domain] = {self.default.host: self.default}
        self._seen: dict[bytes, Domain | None] = {}
        # Nothing to pick: every visit is the default domain's, whatever its Host.
        self.one = not refuse_unknown
        self._reloads: set[asyncio.Task[None]] = set()

    def use(self, rows: Iterable[Any]) -> None:
        """Know the domains in `rows` (of `domains`), and no others."""
        by_id = {0: self.default}
        by_host = {self.default.host: self.default}
        for row in rows:
            own = Redirects(
                row.root_redirect,
                row.not_found_redirect,
                row.expired_redirect,
                row.used_up_redirect,
            )
            domain = Domain(
                row.id,
                row.host,
                origin(row.host, row.https),
                own.over(self.instance),
                cache_key(row.id, ""),
            )
            by_id[domain.id] = by_host[domain.host] = domain
        self._by_id, self._by_host, self._seen = by_id, by_host, {}
        self.one = len(by_id) == 1 and not self.refuse

    async def reload(self) -> None:
        async with self.db.read() as conn:
            self.use(await rows(conn))

    def heard(self, key: str) -> None:
        """A key off the invalidation bus: another process changed a domain (CHANGED)."""
        if key != CHANGED:
            return
        task = asyncio.get_running_loop().create_task(self._reload_quietly())
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    async def _reload_quietly(self) -> None:
        try:
            await self.reload()
        except Exception:
            # The periodic reload (kurz.bootstrap) tries again.
            log.warning("reloading the domains failed", exc_info=True)

    def of(self, headers: Sequence[tuple[bytes, bytes]]) -> Domain | None:
        """The domain a request's Host header names; None: refused (KURZ_UNKNOWN_HOST)."""
        host = b""
        for name, value in headers:
            if name == b"host":
                host = value
                break
        try:
            return self._seen[host]
        except KeyError:
            return self._learn(host)

    def visited(self, host: str) -> Domain | None:
        """The domain of a visit to `host` (gRPC ResolveLink's `domain`; empty: the
        default), as `of` picks it for a Host header."""
        if not host:
            return self.default
        normal = normalize_host(host)
        domain = self.named(normal) if normal is not None else None
        return self.default if domain is None and not self.refuse else domain

    def _learn(self, raw: bytes) -> Domain | None:
        normal = host_of_header(raw)
        domain = self.named(normal) if normal is not None else None
        if domain is None and not self.refuse:
            domain = self.default
        seen = self._seen
        if len(seen) >= _SEEN:
            seen.clear()
        seen[raw] = domain
        return domain

    def named(self, host: str) -> Domain | None:
        """The domain of a host in its normal form (kurz.links.hosts)."""
        return self._by_host.get(host)

    def get(self, domain_id: int) -> Domain | None:
        return self._by_id.get(domain_id)


async def rows(conn: AsyncConnection) -> Sequence[Any]:
    return (await conn.execute(sa.select(domains).order_by(domains.c.host))).all()


def target_host(url: str) -> str | None:
    """The host of `url` (a normalized target), in its normal form."""
    return normalize_host(urlsplit(url).netloc.rpartition("@")[2])


async def known(conn: AsyncConnection, hosts: Collection[str]) -> dict[str, int]:
    """Which of `hosts` (in their normal form) are kurz's domains (not the default,
    which kurz.links.urls.Origins knows), with their ids: one statement for many."""
    if not hosts:
        return {}
    found = await conn.execute(
        sa.select(domains.c.host, domains.c.id).where(domains.c.host.in_(sorted(hosts)))
    )
    return {host: int(domain_id) for host, domain_id in found}


async def is_ours(conn: AsyncConnection, url: str) -> bool:
    """Whether `url` (a normalized target) is on one of kurz's domains (not the
    default, which kurz.links.urls.Origins knows)."""
    normal = target_host(url)
    return normal is not None and bool(await known(conn, {normal}))


def named(host: str | None, *, default_host: str) -> int | str | None:
    """What an API caller's `host` names: the default domain (0; None or empty too), a
    host to look up (in its normal form), or nothing at all (None)."""
    if not host:
        return 0
    normal = normalize_host(host)
    return 0 if normal == default_host else normal


async def id_of(conn: AsyncConnection, host: str | None, *, default_host: str) -> int | None:
    """The id of the domain an API caller names by `host` (any spelling; None or
    empty: the default, 0), or None when there is no such domain."""
    name = named(host, default_host=default_host)
    if not isinstance(name, str):
        return name
    return (await known(conn, {name})).get(name)
