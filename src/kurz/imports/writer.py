"""One page of an import, written in the transaction the caller holds: its links, where
each came from, its statistics and its report rows (docs/imports.md).

Each link read ends one of four ways: imported (as it was), renamed (its alias was
taken and `rename` gave it a suffix), skipped (imported before from the same source,
or its alias taken with `skip`) or failed (kurz refuses it: the reason says why).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from kurz.analytics.store import add_counts
from kurz.auth.models import Principal
from kurz.db.tables import import_rows, link_sources, links
from kurz.errors import Problem
from kurz.imports.sources import Clicks, OnConflict, Record, Unreadable
from kurz.links import domains, queries
from kurz.links.codes import cache_key
from kurz.links.models import LinkCreate
from kurz.links.urls import Origins

# How many suffixes `rename` tries (alias-2 ... alias-N) before the row fails.
RENAMES = 50
# The longest code (links.code).
MAX_CODE = 64
# The longest title kurz keeps (LinkCreate.og_title): a longer one is cut, not refused.
MAX_TITLE = 300


@dataclass(frozen=True, slots=True)
class Target:
    """Where an import's links go: whose they are and the domain when a record names
    none."""

    import_id: int
    owner: Principal
    source: str
    on_conflict: OnConflict
    domain: str | None
    default_host: str
    base_url: str
    own: Origins


@dataclass(slots=True)
class Written:
    """What a page added: counts for the import, and the links made (cache key, version)."""

    read: int = 0
    imported: int = 0
    skipped: int = 0
    failed: int = 0
    clicks: int = 0
    made: list[tuple[str, int]] = field(default_factory=list)


@dataclass(slots=True)
class _Row:
    """A link read, on its way to its report row."""

    n: int
    record: Record
    outcome: str = ""
    code: str | None = None
    reason: str | None = None


def _day(value: date) -> datetime:
    return datetime.combine(value, time(), tzinfo=UTC)


def _asked(record: Record) -> dict[str, Any]:
    """The record as a create would ask for it (what LinkCreate validates)."""
    asked: dict[str, Any] = {"url": record.url, "tags": list(record.tags)}
    title = (record.title or "").strip()
    optional = {
        "alias": record.alias,
        "og_title": title[:MAX_TITLE] or None,
        "og_description": record.og_description,
        "og_image": record.og_image,
        "max_visits": record.max_visits,
        "redirect_status": record.redirect_status,
        "forward_query": record.forward_query,
        "variants": record.variants,
        "variant_choice": record.variant_choice,
        "fallbacks": record.fallbacks,
    }
    asked.update({name: value for name, value in optional.items() if value is not None})
    if record.rules:
        asked["rules"] = list(record.rules)
    return asked


def _said(exc: ValidationError) -> str:
    """A validation error as one line: each field and what is wrong with it."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'link'}: "
        + str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        for error in exc.errors()
    )


def _renamed(alias: str, attempt: int) -> str:
    suffix = f"-{attempt}"
    return alias[: MAX_CODE - len(suffix)] + suffix


async def write_page(
    conn: AsyncConnection,
    target: Target,
    items: Sequence[Record | Clicks | Unreadable],
    *,
    first_n: int,
    now: datetime,
) -> Written:
    """Write one page's items; `first_n`: the report number of its first link read."""
    written = Written()
    rows: list[_Row] = []
    failures: list[tuple[int, Unreadable]] = []
    clicks: list[Clicks] = []
    n = first_n
    for item in items:
        if isinstance(item, Clicks):
            clicks.append(item)
            continue
        if isinstance(item, Unreadable):
            failures.append((n, item))
        else:
            rows.append(_Row(n, item))
        n += 1
    written.read = n - first_n

    made = await _links(conn, target, rows, now=now)
    written.made = made
    written.clicks = await _statistics(conn, target, clicks)

    report = [
        {"import_id": target.import_id, "n": row.n, "place": row.record.place[:300],
         "source_id": row.record.source_id[:400], "outcome": row.outcome, "code": row.code,
         "reason": row.reason}
        for row in rows
    ] + [
        {"import_id": target.import_id, "n": at, "place": item.place[:300],
         "source_id": None if item.source_id is None else item.source_id[:400],
         "outcome": "failed", "code": None, "reason": item.reason}
        for at, item in failures
    ]  # fmt: skip
    if report:
        await conn.execute(sa.insert(import_rows), report)
    for row in rows:
        if row.outcome in ("imported", "renamed"):
            written.imported += 1
        elif row.outcome == "skipped":
            written.skipped += 1
        else:
            written.failed += 1
    written.failed += len(failures)
    return written


async def _links(
    conn: AsyncConnection, target: Target, rows: Sequence[_Row], *, now: datetime
) -> list[tuple[str, int]]:
    """Make the links of `rows` that are new, setting each row's outcome; the cache key
    and version of each link made."""
    fresh = await _not_imported_before(conn, target, rows)
    domain_ids = await _domains(conn, target, fresh)
    asked: list[tuple[_Row, queries.NewLink]] = []
    for row in fresh:
        domain_id = domain_ids.get(row.record.domain or target.domain)
        if domain_id is None:
            row.outcome, row.reason = (
                "failed",
                (
                    f"the domain '{row.record.domain or target.domain}' is not one of this "
                    "kurz's: add it (kurz domain add), or import with another domain"
                ),
            )
            continue
        try:
            link_in = LinkCreate.model_validate(_asked(row.record))
        except ValidationError as exc:
            row.outcome, row.reason = "failed", _said(exc)
            continue
        asked.append((row, queries.NewLink(link_in, domain_id, row.record.password_hash)))
    values = await queries.rows_to_import(
        conn, [new for _, new in asked], owner=target.owner, now=now, own=target.own
    )
    todo: dict[int, dict[str, Any]] = {}
    tags: dict[int, list[str]] = {}
    by_place: dict[int, _Row] = {}
    for i, ((row, new), value) in enumerate(zip(asked, values, strict=True)):
        if isinstance(value, Problem):
            row.outcome, row.reason = "failed", value.detail or value.title
            continue
        record = row.record
        created = record.created_at or now
        value.update(
            is_alias=record.alias is not None and not record.drawn,
            created_at=created,
            updated_at=max(created, record.deleted_at or created),
            starts_at=record.starts_at,
            expires_at=record.expires_at,
            visits=record.visits,
            deleted_at=record.deleted_at,
        )
        todo[i], tags[i], by_place[i] = value, list(new.link_in.tags), row
    ids = await _write_all(conn, target, todo, tags, by_place)
    if ids:
        await conn.execute(
            sa.insert(link_sources),
            [
                {"link_id": link_id, "user_id": target.owner.user_id, "source": target.source,
                 "source_id": by_place[i].record.source_id, "import_id": target.import_id}
                for i, link_id in ids.items()
            ],
        )  # fmt: skip
    return [
        (cache_key(todo[i]["domain_id"], str(todo[i]["code"])), int(todo[i]["version"]))
        for i in ids
    ]


async def _write_all(
    conn: AsyncConnection,
    target: Target,
    todo: dict[int, dict[str, Any]],
    tags: Mapping[int, list[str]],
    rows: Mapping[int, _Row],
) -> dict[int, int]:
    """Write the links of `todo`: an alias taken is skipped, renamed or fails, as the
    import says. Two links of the page asking for one alias are written one after the
    other, so that the second meets the first as taken."""
    ids: dict[int, int] = {}
    attempt = dict.fromkeys(todo, 1)
    asked_alias = {i: values["code"] for i, values in todo.items()}
    pending = dict(todo)
    while pending:
        seen: set[tuple[int, str]] = set()
        now_rows: dict[int, dict[str, Any]] = {}
        for i, values in pending.items():
            key = (values["domain_id"], values["code"])
            if values["code"] is not None and key in seen:
                continue  # the same alias twice in this round: the later waits a round
            seen.add(key)
            now_rows[i] = values
        made = await queries.write_links(conn, now_rows, {i: tags[i] for i in now_rows})
        ids.update(made)
        for i in now_rows:
            del pending[i]
            row = rows[i]
            if i in made:
                row.outcome, row.code = (
                    ("renamed" if attempt[i] > 1 else "imported"),
                    str(todo[i]["code"]),
                )
                if attempt[i] > 1:
                    row.reason = f"the alias '{asked_alias[i]}' was taken"
                continue
            alias = str(asked_alias[i])
            if target.on_conflict == "rename" and attempt[i] < RENAMES:
                attempt[i] += 1
                todo[i]["code"] = _renamed(alias, attempt[i])
                pending[i] = todo[i]
            elif target.on_conflict == "skip":
                row.outcome, row.reason = "skipped", f"the alias '{alias}' is taken"
            else:
                row.outcome, row.reason = (
                    "failed",
                    f"the alias '{alias}' is taken"
                    + (f" (and {RENAMES - 1} suffixes)" if target.on_conflict == "rename" else ""),
                )
    return ids


async def _not_imported_before(
    conn: AsyncConnection, target: Target, rows: Sequence[_Row]
) -> list[_Row]:
    """The rows whose source id no import of the owner's has brought in (nor an earlier
    row of this page); the others are marked skipped, naming the link made before."""
    before = {
        source_id: code
        for source_id, (code, _, _) in (
            await _imported(conn, target, {row.record.source_id for row in rows})
        ).items()
    }
    fresh: list[_Row] = []
    seen: dict[str, int] = {}
    for row in rows:
        source_id = row.record.source_id
        if source_id in before:
            row.outcome, row.code = "skipped", before[source_id]
            row.reason = f"imported before (as {before[source_id]})"
        elif source_id in seen:
            row.outcome = "skipped"
            row.reason = f"the same link as report row {seen[source_id]} ({source_id})"
        else:
            seen[source_id] = row.n
            fresh.append(row)
    return fresh


async def _domains(
    conn: AsyncConnection, target: Target, rows: Sequence[_Row]
) -> dict[str | None, int]:
    """The domain id of each host the rows (or the import) name; a host kurz does not
    serve is left out."""
    hosts = {row.record.domain or target.domain for row in rows}
    names = {host: domains.named(host, default_host=target.default_host) for host in hosts}
    ids = await domains.known(conn, {name for name in names.values() if isinstance(name, str)})
    found: dict[str | None, int] = {}
    for host, name in names.items():
        domain_id = ids.get(name) if isinstance(name, str) else name
        if domain_id is not None:
            found[host] = domain_id
    return found


async def _statistics(conn: AsyncConnection, target: Target, items: Sequence[Clicks]) -> int:
    """Add the statistics of the links this import made (a link skipped gets none: a
    second run adds no clicks twice); the clicks carried over."""
    if not items:
        return 0
    link_ids = {
        source_id: link_id
        for source_id, (_, link_id, import_id) in (
            await _imported(conn, target, {item.source_id for item in items})
        ).items()
        if import_id == target.import_id
    }
    daily: dict[tuple[int, datetime], list[int]] = {}
    hourly: dict[tuple[int, datetime], list[int]] = {}
    breakdowns: dict[tuple[int, str, datetime, str], int] = {}
    undated: dict[int, int] = {}
    carried = 0
    for item in items:
        link_id = link_ids.get(item.source_id)
        if link_id is None:
            continue  # its link was skipped or failed (or made by an earlier import)
        for day in item.daily:
            counts = daily.setdefault((link_id, _day(day.day)), [0, 0, 0])
            counts[0] += day.clicks
            counts[1] += day.bot_clicks
            counts[2] += day.clicks if day.uniques is None else day.uniques
            carried += day.clicks + day.bot_clicks
        for hour in item.hourly:
            counts = hourly.setdefault((link_id, hour.hour.astimezone(UTC)), [0, 0, 0])
            counts[0] += hour.clicks
            counts[1] += hour.bot_clicks
            counts[2] += hour.clicks if hour.uniques is None else hour.uniques
        for part in item.breakdowns:
            key = (link_id, part.dimension, _day(part.day), part.value[:255])
            breakdowns[key] = breakdowns.get(key, 0) + part.clicks
            # A day's breakdowns come with its daily row (kurz.analytics.store.add_counts).
            daily.setdefault((link_id, _day(part.day)), [0, 0, 0])
        if item.total:
            undated[link_id] = undated.get(link_id, 0) + item.total
            carried += item.total
    await add_counts(
        conn,
        daily=[(link, day, c[0], c[1], c[2]) for (link, day), c in sorted(daily.items())],
        hourly=[(link, hour, c[0], c[1], c[2]) for (link, hour), c in sorted(hourly.items())],
        breakdowns=[(*key, n) for key, n in sorted(breakdowns.items())],
        undated=sorted(undated.items()),
    )
    return carried


# The links of the owner's source with the ids asked for. On PostgreSQL each id probes
# the key on its own (LATERAL, at most one row): asyncpg's prepared statements get a
# generic plan after five runs, and for `source_id IN ($1, ..., $500)` (or a join to
# the ids' array) that plan read every row of link_sources, a page of 500 costing 0.4 s
# at 50,000 links and more with every page.
_IMPORTED_PG = sa.text(
    "SELECT asked.source_id, found.code, found.link_id, found.import_id "
    "FROM unnest(CAST(:ids AS text[])) AS asked (source_id) "
    "CROSS JOIN LATERAL (SELECT l.code, s.link_id, s.import_id FROM link_sources s "
    "JOIN links l ON l.id = s.link_id "
    "WHERE s.source_id = asked.source_id AND s.source = :source AND s.user_id = :user_id "
    "LIMIT 1) AS found"
)


async def _imported(
    conn: AsyncConnection, target: Target, source_ids: Collection[str]
) -> dict[str, tuple[str, int, int]]:
    """Of `source_ids`, those the owner has imported from the source before (this import
    included): each one's link code, link id and the import that made it."""
    found: dict[str, tuple[str, int, int]] = {}
    for chunk in _chunks(sorted(source_ids), 500):
        if conn.dialect.name == "postgresql":
            rows = await conn.execute(
                _IMPORTED_PG,
                {"ids": list(chunk), "source": target.source, "user_id": target.owner.user_id},
            )
        else:
            rows = await conn.execute(
                sa.select(
                    link_sources.c.source_id, links.c.code, link_sources.c.link_id,
                    link_sources.c.import_id,
                )
                .join(links, links.c.id == link_sources.c.link_id)
                .where(
                    link_sources.c.source_id.in_(chunk),
                    link_sources.c.source == target.source,
                    link_sources.c.user_id == target.owner.user_id,
                )
            )  # fmt: skip
        found.update(
            (str(source_id), (str(code), int(link_id), int(import_id)))
            for source_id, code, link_id, import_id in rows
        )
    return found


def _chunks(values: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
