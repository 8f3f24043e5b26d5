"""SQL for links, on a connection the caller holds inside its transaction.

The use cases (kurz.links.service) open the transaction and call these, so that
they can add writes of their own to it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import ColumnElement, Row
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from kurz.auth.models import Principal
from kurz.db.keyset import decode_position, encode_position
from kurz.db.tables import domains, link_tags, links
from kurz.errors import Problem, invalid, not_found
from kurz.links import codes, variants
from kurz.links.conditions import TargetingRule, loaded, stored
from kurz.links.domains import Redirects, default_domain, known, origin, target_host
from kurz.links.models import (
    Fallbacks,
    LinkActor,
    LinkCreate,
    LinkPagination,
    LinkRead,
    LinkUpdate,
    LinkVariant,
)
from kurz.links.search import Search, narrowed, text_of
from kurz.links.target import COLUMNS, Target
from kurz.links.urls import Origins

# A generated code collides with probability (links / 62**7) per try; at a billion
# links that is 3e-4, so eight tries fail together with probability ~1e-28.
_CODE_ATTEMPTS = 8
_CLEARABLE = frozenset(
    {
        "starts_at", "expires_at", "max_visits", "fallbacks", "rules", "variants",
        "variant_choice",
        "password", "og_title", "og_description", "og_image",
    }
)  # fmt: skip
# links.version is a 32-bit integer.
MAX_VERSION = 2**31 - 1
AnyRow = Row[*tuple[Any, ...]]
_NO_REDIRECTS = Redirects()
_EVERY_LINK = Search()

_COLUMNS = (
    links.c.id,
    links.c.code,
    links.c.url,
    links.c.is_alias,
    links.c.created_at,
    links.c.updated_at,
    links.c.starts_at,
    links.c.expires_at,
    links.c.max_visits,
    links.c.fallbacks,
    links.c.redirect_status,
    links.c.forward_query,
    links.c.rules,
    links.c.variants,
    links.c.version,
    links.c.created_by_user_id,
    links.c.created_by_key_id,
    links.c.updated_by_user_id,
    links.c.updated_by_key_id,
    links.c.domain_id,
    domains.c.host.label("domain_host"),
    domains.c.https.label("domain_https"),
    links.c.password_hash.is_not(None).label("password_protected"),
    links.c.og_title,
    links.c.og_description,
    links.c.og_image,
)
# Links with their domain's name (none: the default domain).
_WITH_DOMAIN = links.outerjoin(domains, domains.c.id == links.c.domain_id)


def _select() -> sa.Select[Any]:
    return sa.select(*_COLUMNS).select_from(_WITH_DOMAIN)


@dataclass(frozen=True, slots=True)
class Versions:
    """What an If-Match header allows: some versions, or any (`*`)."""

    allowed: frozenset[int] | None
    # It named weak tags only, which never match: the 412 then says why.
    weak_only: bool = False

    @classmethod
    def any(cls) -> Versions:
        return cls(None)


def etag(version: int) -> str:
    return f'"{version}"'


def visible(principal: Principal) -> list[ColumnElement[bool]]:
    """WHERE conditions for the links a caller may see: its user's live ones (an
    admin's: all live). Links belong to users (ADR 0016)."""
    conditions: list[ColumnElement[bool]] = [links.c.deleted_at.is_(None)]
    if not principal.is_admin:
        conditions.append(links.c.user_id == principal.user_id)
    return conditions


def changed_by(principal: Principal) -> dict[str, int | None]:
    """The columns that say who changed a link last: the user, and their key if any."""
    return {"updated_by_user_id": principal.user_id, "updated_by_key_id": principal.key_id}


def _missing(code: str) -> Problem:
    return not_found(f"No link with code '{code}'.")


def _named(code: str, domain_id: int) -> list[ColumnElement[bool]]:
    """WHERE conditions for the link `code` on a domain."""
    return [links.c.domain_id == domain_id, links.c.code == code]


@lru_cache(maxsize=8)
def _default_origin(base_url: str) -> tuple[str, str]:
    """The default domain's host and where its short URLs start."""
    domain = default_domain(base_url, _NO_REDIRECTS)
    return domain.host, domain.origin


def _check_target(url: str, *, own: Origins) -> None:
    if own.contains(url):
        raise invalid("url", "points at this kurz itself, which would redirect in a loop")


def _check_rules(rules: list[TargetingRule], *, own: Origins) -> None:
    for index, rule in enumerate(rules):
        if own.contains(rule.url):
            raise invalid(
                f"rules.{index}.url", "points at this kurz itself, which would redirect in a loop"
            )


# A URL a link sends visits to: the field that names it, and its host (None: no host
# that could be a domain of kurz's).
Named = tuple[str, str | None]


def _targets(
    url: str,
    given: Sequence[LinkVariant] | None = None,
    rules: Sequence[TargetingRule] | None = None,
) -> list[Named]:
    """The URLs a link (or a change) sends visits to, each with the field that names it."""
    named = [("url", url)] if url else []
    named += [(f"variants.{i}.url", variant.url) for i, variant in enumerate(given or ())]
    named += [(f"rules.{i}.url", rule.url) for i, rule in enumerate(rules or ())]
    return [(field, target_host(each)) for field, each in named]


def _hosts(targets: Iterable[Named]) -> set[str]:
    return {host for _, host in targets if host is not None}


def _check_ours(targets: Iterable[Named], ours: Collection[str]) -> None:
    """Refuse a target on one of kurz's domains (`ours`, their hosts): a loop."""
    for field, host in targets:
        if host in ours:
            raise invalid(
                field, "points at a domain of this kurz's, which would redirect in a loop"
            )


async def _check_domains(
    conn: AsyncConnection,
    url: str,
    given: Sequence[LinkVariant] | None = None,
    rules: Sequence[TargetingRule] | None = None,
) -> None:
    """Refuse a url, a variant's or a rule's, on one of kurz's domains (a loop)."""
    targets = _targets(url, given, rules)
    _check_ours(targets, await known(conn, _hosts(targets)))


def _stored_variants(
    given: Sequence[LinkVariant], choice: variants.VariantChoice, *, own: Origins
) -> str:
    """The variants column for the variants a request gave."""
    for i, variant in enumerate(given):
        if own.contains(variant.url):
            raise invalid(
                f"variants.{i}.url", "points at this kurz itself, which would redirect in a loop"
            )
    return variants.stored([(v.url, v.weight) for v in given], choice)


def _variant_changes(
    changes: dict[str, Any], current: str | None, *, own: Origins
) -> dict[str, Any]:
    """The variants column a PATCH's `variants` and `variant_choice` leave, if it
    sent either; `current` is the column now."""
    given = changes.pop("variants", ...)
    choice = changes.pop("variant_choice", None)
    if given is ...:
        found = variants.parse(current)
        if choice is None:
            return {}
        if found is None:
            raise invalid("variant_choice", "the link has no variants to choose among")
        return {"variants": variants.stored(found[0], choice)}
    if given is None:
        if choice is not None:
            raise invalid("variant_choice", "the link has no variants to choose among")
        return {"variants": None}
    if choice is None:
        found = variants.parse(current)
        choice = "random" if found is None else found[1]
    return {"variants": _stored_variants(given, choice, own=own)}


def _check_expiry(expires_at: datetime | None, *, now: datetime) -> None:
    if expires_at is not None and expires_at <= now:
        raise invalid("expires_at", "must be in the future")


def _check_window(starts_at: datetime | None, expires_at: datetime | None, *, moved: str) -> None:
    """A link redirects in [starts_at, expires_at): a window that is never open is refused,
    naming the end the request `moved`."""
    if starts_at is None or expires_at is None or starts_at < expires_at:
        return
    if moved == "starts_at":
        raise invalid("valid_from", "must be before expires_at")
    raise invalid("expires_at", "must be after valid_from")


async def _tags(conn: AsyncConnection, link_ids: Sequence[int]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {link_id: [] for link_id in link_ids}
    if link_ids:
        rows = await conn.execute(
            sa.select(link_tags.c.link_id, link_tags.c.tag)
            .where(link_tags.c.link_id.in_(link_ids))
            .order_by(link_tags.c.link_id, link_tags.c.tag)
        )
        for link_id, tag in rows:
            found[link_id].append(tag)
    return found


async def _set_tags(conn: AsyncConnection, link_id: int, tags: Iterable[str]) -> None:
    await conn.execute(sa.delete(link_tags).where(link_tags.c.link_id == link_id))
    rows = [{"link_id": link_id, "tag": tag} for tag in tags]
    if rows:
        await conn.execute(sa.insert(link_tags), rows)


def _fallbacks(fallbacks: Fallbacks | None) -> str | None:
    """The column's JSON: the fallbacks set, or NULL for none."""
    kept = {} if fallbacks is None else fallbacks.model_dump(exclude_none=True)
    return orjson.dumps(kept).decode() if kept else None


def _actor(user_id: int | None, key_id: int | None) -> LinkActor | None:
    return None if user_id is None else LinkActor(user=user_id, key=key_id)


def _read(row: AnyRow, tags: list[str], *, base_url: str) -> LinkRead:
    if row.domain_host is None:
        host, start = _default_origin(base_url)
    else:
        host, start = row.domain_host, origin(row.domain_host, row.domain_https)
    found = variants.parse(row.variants)
    return LinkRead(
        code=row.code,
        domain=host,
        short_url=f"{start}/{row.code}",
        url=row.url,
        alias=row.is_alias,
        created_at=row.created_at,
        updated_at=row.updated_at,
        valid_from=row.starts_at,
        expires_at=row.expires_at,
        max_visits=row.max_visits,
        fallbacks=Fallbacks() if row.fallbacks is None else orjson.loads(row.fallbacks),
        redirect_status=row.redirect_status,
        forward_query=row.forward_query,
        tags=tags,
        rules=loaded(row.rules),
        variants=None
        if found is None
        else [LinkVariant.model_construct(url=url, weight=weight) for url, weight in found[0]],
        variant_choice=None if found is None else found[1],
        version=row.version,
        created_by=_actor(row.created_by_user_id, row.created_by_key_id),
        updated_by=_actor(row.updated_by_user_id, row.updated_by_key_id),
        password_protected=bool(row.password_protected),
        og_title=row.og_title,
        og_description=row.og_description,
        og_image=row.og_image,
    )


def selected() -> sa.Select[Any]:
    """Links with the columns `rendered` reads (and their domain's), for a reader of
    its own (kurz.exports) to narrow and add to."""
    return _select()


def rendered(row: AnyRow, tags: list[str], *, base_url: str) -> LinkRead:
    """A row of `selected()` as the API renders the link."""
    return _read(row, tags, base_url=base_url)


async def tags_of(conn: AsyncConnection, link_ids: Sequence[int]) -> dict[int, list[str]]:
    """The tags of each link, in order."""
    return await _tags(conn, link_ids)


@dataclass(frozen=True, slots=True)
class NewLink:
    """A link to make: as asked, on the domain it names, with its password hashed by
    the caller (kurz.links.service), which should not hash inside a transaction."""

    link_in: LinkCreate
    domain_id: int
    password_hash: str | None = None


def alias_taken(alias: str, *, earlier: int | None = None) -> Problem:
    """The 409 for an alias in use; `earlier`: the item of the same batch that took it."""
    detail = (
        f"The alias '{alias}' is in use, or was used before; choose another."
        if earlier is None
        else f"The alias '{alias}' is taken by links[{earlier}] of this batch; choose another."
    )
    return Problem(409, "alias-taken", "Alias Taken", detail)


def _values(
    new: NewLink,
    targets: list[Named],
    ours: Collection[str],
    *,
    owner: Principal,
    now: datetime,
    own: Origins,
) -> dict[str, Any]:
    """The row of a new link, but its code; raises the Problem that refuses it, if any."""
    link_in = new.link_in
    _check_target(link_in.url, own=own)
    _check_rules(link_in.rules, own=own)
    _check_ours(targets, ours)
    _check_expiry(link_in.expires_at, now=now)
    _check_window(link_in.starts_at, link_in.expires_at, moved="starts_at")
    if link_in.variants is None and link_in.variant_choice is not None:
        raise invalid("variant_choice", "needs `variants` to choose among")
    return {
        "domain_id": new.domain_id,
        "code": link_in.alias,
        "url": link_in.url,
        "is_alias": link_in.alias is not None,
        "user_id": owner.user_id,
        "created_by_user_id": owner.user_id,
        "created_by_key_id": owner.key_id,
        "created_at": now,
        "updated_at": now,
        "starts_at": link_in.starts_at,
        "expires_at": link_in.expires_at,
        "max_visits": link_in.max_visits,
        "fallbacks": _fallbacks(link_in.fallbacks),
        "redirect_status": link_in.redirect_status,
        "forward_query": link_in.forward_query,
        "rules": stored(link_in.rules),
        "variants": None
        if link_in.variants is None
        else _stored_variants(link_in.variants, link_in.variant_choice or "random", own=own),
        "password_hash": new.password_hash,
        "og_title": link_in.og_title,
        "og_description": link_in.og_description,
        "og_image": link_in.og_image,
        "version": 1,
    }


async def _insert(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> dict[Any, int]:
    """Insert `rows`, in one statement; the ids of those written, by (domain id, code).
    A row whose code exists already (live or deleted) is left out."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(links)
        .on_conflict_do_nothing(index_elements=[links.c.domain_id, links.c.code])
        .returning(links.c.domain_id, links.c.code, links.c.id)
    )
    found = await conn.execute(stmt, list(rows))
    return {(domain_id, code): link_id for domain_id, code, link_id in found}


async def _write(
    conn: AsyncConnection, rows: Mapping[int, dict[str, Any]], tags: Mapping[int, list[str]]
) -> dict[int, int]:
    """Insert `rows` (by their place among the links asked for): the ids of those
    written. An alias in use is left out; a generated code that is, is drawn again."""
    # Codes this statement writes, so that no two of its rows collide with each other.
    used = {(values["domain_id"], values["code"]) for values in rows.values() if values["code"]}
    # The rows whose code is drawn here; the others keep theirs (an alias, a code an
    # import carries over) or are left out when it is taken.
    drawn = {i for i, values in rows.items() if values["code"] is None}
    todo = dict(rows)
    ids: dict[int, int] = {}
    for _ in range(_CODE_ATTEMPTS):
        if not todo:
            return ids
        for i, values in todo.items():
            if i in drawn:
                code = codes.generate()
                while (values["domain_id"], code) in used:
                    code = codes.generate()
                used.add((values["domain_id"], code))
                values["code"] = code
            values["search"] = text_of(values["code"], values["url"], values["og_title"], tags[i])
        written = await _insert(conn, list(todo.values()))
        for i, values in list(todo.items()):
            link_id = written.get((values["domain_id"], values["code"]))
            if link_id is not None:
                ids[i] = link_id
            if link_id is not None or i not in drawn:
                del todo[i]
    if not todo:
        return ids
    raise RuntimeError(f"no free code after {_CODE_ATTEMPTS} attempts")


async def rows_to_import(
    conn: AsyncConnection,
    new: Sequence[NewLink],
    *,
    owner: Principal,
    now: datetime,
    own: Origins,
) -> list[dict[str, Any] | Problem]:
    """The rows of links carried over from elsewhere (kurz.imports), each checked as
    create() checks one but for its window, which may lie in the past (an expired link
    is carried over as it is): a row (its code the alias asked for, or None: one is
    drawn when written), or the Problem that refuses it. The caller sets what a create
    does not (created_at, the window, visits, deleted_at) and writes them with
    `write_links`."""
    targets = [_targets(n.link_in.url, n.link_in.variants, n.link_in.rules) for n in new]
    ours = await known(conn, {host for named in targets for host in _hosts(named)})
    made: list[dict[str, Any] | Problem] = []
    for item, named in zip(new, targets, strict=True):
        try:
            made.append(_values(item, named, ours, owner=owner, now=now, own=own))
        except Problem as problem:
            made.append(problem)
    return made


async def write_links(
    conn: AsyncConnection, rows: Mapping[int, dict[str, Any]], tags: Mapping[int, list[str]]
) -> dict[int, int]:
    """Insert `rows` (from `rows_to_import`, by the caller's numbering) and their tags:
    the ids of those written. A row whose alias is in use (live or deleted) is left out;
    a drawn code that is, is drawn again."""
    ids = await _write(conn, rows, tags)
    tag_rows = [{"link_id": ids[i], "tag": tag} for i in ids for tag in tags[i]]
    if tag_rows:
        await conn.execute(sa.insert(link_tags), tag_rows)
    return ids


async def create_many(
    *,
    conn: AsyncConnection,
    new: Sequence[NewLink],
    owner: Principal,
    now: datetime,
    base_url: str,
    own: Origins,
) -> list[LinkRead | Problem]:
    """New links, in the order asked, each checked as create() checks one: a link
    refused is its Problem, in its place, and the others are written. A refusal never
    spoils the transaction: the checks raise before anything is written, and a code in
    use writes nothing (ON CONFLICT DO NOTHING). An alias asked for twice is the later
    link's 409."""
    targets = [_targets(n.link_in.url, n.link_in.variants, n.link_in.rules) for n in new]
    ours = await known(conn, {host for named in targets for host in _hosts(named)})
    refused: dict[int, Problem] = {}
    rows: dict[int, dict[str, Any]] = {}
    aliases: dict[tuple[int, str], int] = {}
    for i, (item, named) in enumerate(zip(new, targets, strict=True)):
        try:
            values = _values(item, named, ours, owner=owner, now=now, own=own)
        except Problem as problem:
            refused[i] = problem
            continue
        alias = item.link_in.alias
        if alias is not None:
            first = aliases.setdefault((item.domain_id, alias), i)
            if first != i:
                refused[i] = alias_taken(alias, earlier=first)
                continue
        rows[i] = values
    tags = {i: list(new[i].link_in.tags) for i in rows}
    ids = await _write(conn, rows, tags)
    tag_rows = [{"link_id": ids[i], "tag": tag} for i in ids for tag in tags[i]]
    if tag_rows:
        await conn.execute(sa.insert(link_tags), tag_rows)
    made: dict[int, LinkRead] = {}
    if ids:
        found = await conn.execute(_select().where(links.c.id.in_(list(ids.values()))))
        by_id = {row.id: row for row in found}
        made = {i: _read(by_id[link_id], tags[i], base_url=base_url) for i, link_id in ids.items()}
    for i in rows.keys() - ids.keys():
        refused[i] = alias_taken(str(rows[i]["code"]))
    return [made[i] if i in made else refused[i] for i in range(len(new))]


async def create(
    *,
    conn: AsyncConnection,
    link_in: LinkCreate,
    domain_id: int,
    owner: Principal,
    now: datetime,
    base_url: str,
    own: Origins,
    password_hash: str | None = None,
) -> LinkRead:
    """A new link; `password_hash`: its password's, hashed by the caller (kurz.links.service)."""
    [made] = await create_many(
        conn=conn,
        new=[NewLink(link_in, domain_id, password_hash)],
        owner=owner,
        now=now,
        base_url=base_url,
        own=own,
    )
    if isinstance(made, Problem):
        raise made
    return made


async def get(
    *, conn: AsyncConnection, code: str, domain_id: int, principal: Principal, base_url: str
) -> LinkRead:
    row = (
        await conn.execute(_select().where(*_named(code, domain_id), *visible(principal)))
    ).first()
    if row is None:
        raise _missing(code)
    tags = await _tags(conn, [row.id])
    return _read(row, tags[row.id], base_url=base_url)


async def read_many(
    *, conn: AsyncConnection, ids: Sequence[int], base_url: str
) -> dict[int, LinkRead]:
    """Links by id as the API shows them, deleted ones too: what a webhook carries."""
    rows = (await conn.execute(_select().where(links.c.id.in_(ids)))).all()
    tags = await _tags(conn, [row.id for row in rows])
    return {row.id: _read(row, tags[row.id], base_url=base_url) for row in rows}


async def named_many(
    *, conn: AsyncConnection, ids: Sequence[int], base_url: str
) -> dict[int, dict[str, str]]:
    """Links by id, deleted ones too, as the API names them: code, domain, short_url."""
    rows = await conn.execute(
        sa.select(links.c.id, links.c.code, domains.c.host, domains.c.https)
        .select_from(_WITH_DOMAIN)
        .where(links.c.id.in_(ids))
    )
    named = {}
    for row in rows:
        if row.host is None:
            host, start = _default_origin(base_url)
        else:
            host, start = row.host, origin(row.host, row.https)
        named[row.id] = {"code": row.code, "domain": host, "short_url": f"{start}/{row.code}"}
    return named


async def get_id(
    *, conn: AsyncConnection, code: str, principal: Principal, domain_id: int = 0
) -> int:
    """A visible link's id, for reads keyed on it (its stats); 404 as get() otherwise."""
    query = sa.select(links.c.id).where(*_named(code, domain_id), *visible(principal))
    link_id = (await conn.execute(query)).scalar_one_or_none()
    if link_id is None:
        raise _missing(code)
    return int(link_id)


async def visits(*, conn: AsyncConnection, code: str, domain_id: int, principal: Principal) -> int:
    """The visits a visible link has used of its cap (counted only while it has one)."""
    query = sa.select(links.c.visits).where(*_named(code, domain_id), *visible(principal))
    used = (await conn.execute(query)).scalar_one_or_none()
    if used is None:
        raise _missing(code)
    return int(used)


async def list_(
    *,
    conn: AsyncConnection,
    principal: Principal,
    limit: int,
    cursor: str | None,
    base_url: str,
    search: Search = _EVERY_LINK,
) -> LinkPagination:
    """One page of the links `search` finds, by keyset: new links never shift later
    pages. A cursor is taken only by the search that made it."""
    after = None if cursor is None else decode_position(cursor, *search.orderings())
    owner = None if principal.is_admin else principal.user_id
    query = await narrowed(
        conn, _select().where(*visible(principal)), search, owner=owner, after=after,
        limit=limit + 1,
    )  # fmt: skip
    rows = (await conn.execute(query)).all()
    page, more = rows[:limit], len(rows) > limit
    tags = await _tags(conn, [row.id for row in page])
    return LinkPagination(
        items=[_read(row, tags[row.id], base_url=base_url) for row in page],
        next_cursor=encode_position(search.ordering, search.position(page[-1])) if more else None,
    )


def _version_matches(versions: Versions) -> list[ColumnElement[bool]]:
    if versions.allowed is None:
        return []
    # A version the column cannot hold matches no row; as a bind parameter, PostgreSQL
    # would refuse it (gRPC's expected_version is an int64).
    return [links.c.version.in_([v for v in versions.allowed if 0 < v <= MAX_VERSION])]


async def _explain_miss(
    conn: AsyncConnection, code: str, domain_id: int, principal: Principal, versions: Versions
) -> Problem:
    """Why a conditional write touched no row: the link is gone, or someone else won."""
    current = (
        await conn.execute(
            sa.select(links.c.version).where(*_named(code, domain_id), *visible(principal))
        )
    ).scalar_one_or_none()
    if current is None:
        return _missing(code)
    detail = (
        "If-Match held only weak entity tags (W/...), which never match: If-Match "
        f"compares strongly (RFC 9110 13.1.1). Send the ETag as kurz sent it, {etag(current)}."
        if versions.weak_only
        else "The link changed since you read it (If-Match does not match its ETag); "
        "GET it again and reapply your change."
    )
    return Problem(
        412,
        "precondition-failed",
        "Precondition Failed",
        detail,
        headers={"ETag": etag(current)},
    )


async def update(
    *,
    conn: AsyncConnection,
    code: str,
    domain_id: int,
    principal: Principal,
    link_in: LinkUpdate,
    versions: Versions,
    now: datetime,
    base_url: str,
    own: Origins,
    password_hash: str | None = None,
) -> LinkRead:
    """Apply the fields `link_in` sets; a new password comes hashed, as `password_hash`."""
    changes: dict[str, Any] = {}
    for field in link_in.model_fields_set:
        value = getattr(link_in, field)
        if value is None and field not in _CLEARABLE:
            raise invalid(field, "must not be null")
        changes[field] = value
    if "fallbacks" in changes:
        changes["fallbacks"] = _fallbacks(link_in.fallbacks)
    new_tags = changes.pop("tags", None)
    if "password" in changes:
        del changes["password"]
        changes["password_hash"] = password_hash
    if "url" in changes:
        _check_target(changes["url"], own=own)
    await _check_domains(
        conn, changes.get("url", ""), changes.get("variants"), changes.get("rules")
    )
    if "rules" in changes:
        _check_rules(changes["rules"] or [], own=own)
        changes["rules"] = stored(changes["rules"])
    if "expires_at" in changes:
        _check_expiry(changes["expires_at"], now=now)
    if "variants" in changes or "variant_choice" in changes:
        row = (
            await conn.execute(
                sa.select(links.c.variants).where(*_named(code, domain_id), *visible(principal))
            )
        ).first()
        if row is None:
            # No such link: the UPDATE below matches nothing, and says so.
            changes.pop("variants", None)
            changes.pop("variant_choice", None)
        else:
            changes.update(_variant_changes(changes, row.variants, own=own))

    # One statement checks the version and writes: of two racing writers holding the
    # same ETag, the database lets exactly one UPDATE match.
    result = await conn.execute(
        sa.update(links)
        .where(*_named(code, domain_id), *visible(principal), *_version_matches(versions))
        .values(**changes, **changed_by(principal), updated_at=now, version=links.c.version + 1)
        .returning(links.c.id, links.c.starts_at, links.c.expires_at)
    )
    written = result.first()
    if written is None:
        raise await _explain_miss(conn, code, domain_id, principal, versions)
    link_id = written.id
    if "starts_at" in changes or "expires_at" in changes:
        # Against the stored end when the request moved only one; raising undoes the write.
        moved = "starts_at" if "starts_at" in changes else "expires_at"
        _check_window(written.starts_at, written.expires_at, moved=moved)
    if new_tags is not None:
        await _set_tags(conn, link_id, new_tags)
    link = await get(
        conn=conn, code=code, domain_id=domain_id, principal=principal, base_url=base_url
    )
    if new_tags is not None or "url" in changes or "og_title" in changes:
        searched = text_of(link.code, link.url, link.og_title, link.tags)
        await conn.execute(sa.update(links).where(links.c.id == link_id).values(search=searched))
    return link


async def delete(
    *,
    conn: AsyncConnection,
    code: str,
    domain_id: int,
    principal: Principal,
    versions: Versions,
    now: datetime,
) -> None:
    """Delete a link, leaving a tombstone that keeps its code from ever being reused."""
    result = await conn.execute(
        sa.update(links)
        .where(*_named(code, domain_id), *visible(principal), *_version_matches(versions))
        .values(
            deleted_at=now, **changed_by(principal), updated_at=now, version=links.c.version + 1
        )
        .returning(links.c.id)
    )
    if result.scalar_one_or_none() is None:
        raise await _explain_miss(conn, code, domain_id, principal, versions)


async def resolve(*, conn: AsyncConnection, key: str) -> Target | None:
    """What the redirect path needs of the live link a cache key names, or None."""
    domain_id, code = codes.split_key(key)
    row = (
        await conn.execute(
            sa.select(*COLUMNS).where(*_named(code, domain_id), links.c.deleted_at.is_(None))
        )
    ).first()
    return None if row is None else Target.from_row(row)


async def resolve_many(*, conn: AsyncConnection, keys: Sequence[str]) -> dict[str, Target]:
    """resolve() for many cache keys in one statement: the live links among them, by key."""
    by_domain: dict[int, list[str]] = {}
    for key in keys:
        domain_id, code = codes.split_key(key)
        by_domain.setdefault(domain_id, []).append(code)
    named = sa.or_(
        *(
            sa.and_(links.c.domain_id == domain_id, links.c.code.in_(in_domain))
            for domain_id, in_domain in by_domain.items()
        )
    )
    found = await conn.execute(
        sa.select(links.c.code, *COLUMNS).where(named, links.c.deleted_at.is_(None))
    )
    return {codes.cache_key(row.domain_id, row.code): Target.from_row(row) for row in found}


async def password_hash(*, conn: AsyncConnection, link_id: int) -> tuple[str | None] | None:
    """A live link's password hash, in a tuple (None inside: it has none); None when the
    link is gone."""
    row = (
        await conn.execute(
            sa.select(links.c.password_hash).where(
                links.c.id == link_id, links.c.deleted_at.is_(None)
            )
        )
    ).first()
    return None if row is None else (row.password_hash,)


async def has_visits_left(*, conn: AsyncConnection, link_id: int) -> bool:
    row = (
        await conn.execute(
            sa.select(links.c.visits, links.c.max_visits).where(
                links.c.id == link_id, links.c.deleted_at.is_(None)
            )
        )
    ).first()
    return row is not None and (row.max_visits is None or row.visits < row.max_visits)


async def count_visit(*, conn: AsyncConnection, link_id: int) -> bool:
    """Take one visit from a capped link; False when none is left (or it is gone).

    Atomic in one UPDATE, so N concurrent visitors of a link capped at K get exactly
    K redirects between them.
    """
    result = await conn.execute(
        sa.update(links)
        .where(
            links.c.id == link_id,
            links.c.deleted_at.is_(None),
            links.c.visits < links.c.max_visits,
        )
        .values(visits=links.c.visits + 1)
        .returning(links.c.id)
    )
    return result.scalar_one_or_none() is not None
