"""The links use cases: what the REST views and the gRPC servicer both call.

Each opens its transaction (at the isolation level it names), runs the queries, goes
through the idempotency store where a retry must not repeat a write, and tells the
caches of a change. They return domain results (a LinkRead, a page) or raise a
Problem, and know nothing of HTTP: each API renders them its own way, so the two
cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from kurz.accounts.passwords import Passwords
from kurz.auth.models import Principal
from kurz.cache import FOREVER
from kurz.clock import utcnow
from kurz.db import READ_COMMITTED, REPEATABLE_READ, Database, custom_plans
from kurz.errors import invalid, not_found
from kurz.idempotency import Done, Idempotency, Keyed, fingerprint
from kurz.links import domains, queries
from kurz.links.codes import cache_key, is_code
from kurz.links.models import MAX_TAGS, LinkCreate, LinkPagination, LinkRead, LinkUpdate
from kurz.links.qr import QrCodes, QrImage, QrOptions
from kurz.links.queries import Versions
from kurz.links.search import SORTS, Search, checked_query
from kurz.links.urls import Origins, validate_tag
from kurz.types import Clock

NO_DOMAIN = "names no domain of this kurz's (GET /api/v1/domains lists them)"

# The operations a key is scoped to (besides its principal): one name per use case.
CREATE = "create-link"
UPDATE = "update-link"


class LinkEvents(Protocol):
    """Who hears of links' changes on the connection of the transaction that makes
    them, so that what they write commits or rolls back with it (kurz.webhooks)."""

    async def changed(self, conn: AsyncConnection, *, event: str, keys: Sequence[str]) -> None:
        """`event` (link.created, link.updated, link.deleted, link.expired) happened to
        the links with these cache keys."""


class NoEvents:
    async def changed(self, conn: AsyncConnection, *, event: str, keys: Sequence[str]) -> None:
        return None


class LinkCache(Protocol):
    """The caches that may hold a link, told when it changes (kurz.links.cache.Targets)."""

    async def changed(self, code: str, version: int = FOREVER) -> None: ...

    async def changed_many(self, changed: Iterable[tuple[str, int]]) -> None: ...


def caller_of(principal: Principal) -> str:
    """Whose idempotency keys a request's key is among: its API key's."""
    return principal.subject


def checked_code(code: str) -> str:
    """`code`, if it can be one; whatever cannot is answered before it reaches SQL."""
    if not is_code(code):
        raise not_found(f"No link with code '{code[:64]}'.")
    return code


def _unsecret(link_in: LinkCreate | LinkUpdate, *, exclude_unset: bool = False) -> dict[str, Any]:
    """`link_in` for a fingerprint: whether a password is set, not the password, whose
    plain SHA-256 would be far easier to guess from than its Argon2 hash."""
    body = link_in.model_dump(mode="json", exclude_unset=exclude_unset, exclude={"password"})
    if "password" in link_in.model_fields_set:
        body["password"] = link_in.password is not None
    return body


def asked_for(link_in: LinkCreate, *, default_host: str) -> dict[str, Any]:
    """The link asked for, defaults and all, however it was spelled (the default domain
    named or not)."""
    asked = _unsecret(link_in)
    if asked["domain"] == default_host:
        asked["domain"] = None
    return asked


def create_key(principal: Principal, link_in: LinkCreate, key: str, *, default_host: str) -> Keyed:
    """`key` bound to the link asked for."""
    asked = asked_for(link_in, default_host=default_host)
    return Keyed(caller_of(principal), CREATE, key, fingerprint(asked))


def update_key(
    principal: Principal,
    code: str,
    domain_id: int,
    link_in: LinkUpdate,
    versions: Versions,
    key: str,
) -> Keyed:
    """`key` bound to the change (only the fields sent), its link and the versions it
    may apply to."""
    allowed = None if versions.allowed is None else sorted(versions.allowed)
    change = {
        "code": code,
        "domain": domain_id,
        "link": _unsecret(link_in, exclude_unset=True),
        "versions": allowed,
        "weak_only": versions.weak_only,
    }
    return Keyed(caller_of(principal), UPDATE, key, fingerprint(change))


class Links:
    """The links use cases, over the parts they need."""

    def __init__(
        self,
        *,
        db: Database,
        idempotency: Idempotency,
        clock: Clock,
        base_url: str,
        own: Origins,
        cache: LinkCache,
        passwords: Passwords,
        qr: QrCodes,
        events: LinkEvents | None = None,
    ) -> None:
        self.db = db
        self.events: LinkEvents = events or NoEvents()
        self.idempotency = idempotency
        self.clock = clock
        self.base_url = base_url
        self.default_host = domains.default_domain(base_url, domains.Redirects()).host
        # Where this kurz answers: targets there are refused (they would loop).
        self.own = own
        self.cache = cache
        self.passwords = passwords
        self.qr = qr

    async def create(
        self, *, principal: Principal, link_in: LinkCreate, key: str | None
    ) -> Done[LinkRead]:
        """A new link; with `key`, the link made the first time the key was sent."""
        # Hashed before the transaction, which should not wait for Argon2.
        hashed = await self._hash(link_in.password)

        written: list[int] = []

        async def operation(conn: AsyncConnection) -> LinkRead:
            domain_id = await domains.id_of(conn, link_in.domain, default_host=self.default_host)
            if domain_id is None:
                raise invalid("domain", NO_DOMAIN)
            written.append(domain_id)
            link = await queries.create(
                conn=conn,
                link_in=link_in,
                domain_id=domain_id,
                owner=principal,
                now=utcnow(self.clock),
                base_url=self.base_url,
                own=self.own,
                password_hash=hashed,
            )
            await self.events.changed(
                conn, event="link.created", keys=[cache_key(domain_id, link.code)]
            )
            return link

        keyed = (
            None
            if key is None
            else create_key(principal, link_in, key, default_host=self.default_host)
        )
        done = await self.idempotency.run(operation, keyed, result=LinkRead)
        # A process may remember the code as unknown (a visitor tried it first).
        link = done.value
        changed = cache_key(written[0], link.code) if written else await self._key(link)
        await self.cache.changed(changed, link.version)
        return done

    async def _key(self, link: LinkRead) -> str:
        """The cache key of a link just written."""
        async with self.db.read() as conn:
            domain_id = await domains.id_of(conn, link.domain, default_host=self.default_host)
        return cache_key(domain_id or 0, link.code)

    async def _domain_id(self, conn: AsyncConnection, code: str, domain: str | None) -> int:
        """The domain a per-link route names (`?domain=`); 404 when there is none."""
        domain_id = await domains.id_of(conn, domain, default_host=self.default_host)
        if domain_id is None:
            raise not_found(f"No link with code '{code[:64]}' on domain '{domain}'.")
        return domain_id

    async def get(self, *, principal: Principal, code: str, domain: str | None = None) -> LinkRead:
        # One snapshot for the row and its tags, so the ETag names exactly what is sent.
        async with self.db.read(REPEATABLE_READ) as conn:
            return await queries.get(
                conn=conn,
                code=checked_code(code),
                domain_id=await self._domain_id(conn, code, domain),
                principal=principal,
                base_url=self.base_url,
            )

    async def qr_code(
        self,
        *,
        principal: Principal,
        code: str,
        options: QrOptions,
        domain: str | None = None,
    ) -> QrImage:
        """The QR code of a link's short URL, for whoever may read the link (else 404)."""
        link = await self.get(principal=principal, code=code, domain=domain)
        return await self.qr.image(link.short_url, options)

    async def visits(self, *, principal: Principal, code: str, domain: str | None = None) -> int:
        """How many visits a link has used of its visit cap (the web app's link page)."""
        async with self.db.read() as conn:
            return await queries.visits(
                conn=conn,
                code=checked_code(code),
                domain_id=await self._domain_id(conn, code, domain),
                principal=principal,
            )

    async def list_(
        self,
        *,
        principal: Principal,
        limit: int,
        cursor: str | None,
        tags: Sequence[str] = (),
        domain: str | None = None,
        q: str | None = None,
        sort: str = "newest",
    ) -> LinkPagination:
        """A page of the links that match `q` and carry every one of `tags` (as the
        caller sent them: a 422 for any that cannot be one), in `sort`'s order;
        `domain`: only that domain's (a 422 if kurz has no such domain)."""
        query = checked_query(q)
        if sort not in SORTS:
            raise invalid("sort", f"must be one of {', '.join(SORTS)}", location="query")
        if len(tags) > MAX_TAGS:
            raise invalid("tag", f"at most {MAX_TAGS} tags (a link has no more)", location="query")
        checked = []
        for tag in tags:
            try:
                checked.append(validate_tag(tag))
            except ValueError as exc:
                raise invalid("tag", str(exc), location="query") from None
        # Links and their tags are two statements: one snapshot keeps them together.
        async with self.db.read(REPEATABLE_READ) as conn:
            domain_id = None
            if domain is not None:
                domain_id = await domains.id_of(conn, domain, default_host=self.default_host)
                if domain_id is None:
                    raise invalid("domain", NO_DOMAIN, location="query")
            if query is not None:
                await custom_plans(conn)
            return await queries.list_(
                conn=conn,
                principal=principal,
                limit=limit,
                cursor=cursor,
                base_url=self.base_url,
                search=Search(query, tuple(checked), domain_id, sort),
            )

    async def update(
        self,
        *,
        principal: Principal,
        code: str,
        link_in: LinkUpdate,
        versions: Versions,
        key: str | None,
        domain: str | None = None,
    ) -> Done[LinkRead]:
        """The link changed, if it is at one of `versions`; with `key`, the answer the
        first time the key was sent."""
        checked_code(code)
        async with self.db.read() as conn:
            domain_id = await self._domain_id(conn, code, domain)
        hashed = await self._hash(link_in.password)

        async def operation(conn: AsyncConnection) -> LinkRead:
            link = await queries.update(
                conn=conn,
                code=code,
                domain_id=domain_id,
                principal=principal,
                link_in=link_in,
                versions=versions,
                now=utcnow(self.clock),
                base_url=self.base_url,
                own=self.own,
                password_hash=hashed,
            )
            await self.events.changed(conn, event="link.updated", keys=[cache_key(domain_id, code)])
            return link

        keyed = (
            None if key is None else update_key(principal, code, domain_id, link_in, versions, key)
        )
        done = await self.idempotency.run(operation, keyed, result=LinkRead)
        await self.cache.changed(cache_key(domain_id, code), done.value.version)
        return done

    async def _hash(self, password: str | None) -> str | None:
        return None if password is None else await self.passwords.ahash(password)

    async def delete(
        self, *, principal: Principal, code: str, versions: Versions, domain: str | None = None
    ) -> None:
        async with self.db.write(READ_COMMITTED) as conn:
            domain_id = await self._domain_id(conn, checked_code(code), domain)
            await queries.delete(
                conn=conn,
                code=code,
                domain_id=domain_id,
                principal=principal,
                versions=versions,
                now=utcnow(self.clock),
            )
            await self.events.changed(conn, event="link.deleted", keys=[cache_key(domain_id, code)])
        await self.cache.changed(cache_key(domain_id, code))
