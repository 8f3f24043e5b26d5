"""Finding links: what a search matches, and the SQL that pages through the matches.

A search matches a link when its query is a substring of the link's code, URL, title
(og_title) or one of its tags, case-insensitively (Unicode case folding). Each link
keeps that text case-folded in `links.search`, one field per line, and the index over
it differs by backend (ADR 0018): an FTS5 trigram table on SQLite, a pg_trgm GIN index
on PostgreSQL. Either only narrows the rows; the text itself decides, so that the
answer is the same whichever way a backend finds it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson
import sqlalchemy as sa
from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncConnection

from kurz.db.keyset import Position
from kurz.db.tables import link_tags, links
from kurz.errors import invalid

MAX_QUERY = 200
Sort = Literal["newest", "oldest", "code"]
SORTS: tuple[Sort, ...] = ("newest", "oldest", "code")

# A query holds no control character, so no match can span two of the text's lines.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# The trigram index cannot narrow a shorter query; the text is then read row by row.
_TRIGRAM = 3
# SQLite by code: fewer matches than this are sorted, more are found walking the index
# by code, which then meets a match at least every (links / _FEW) rows.
_FEW = 1000

# The FTS5 table migration 0013 makes on SQLite (not in kurz.db.tables: see there).
_fts = sa.table("links_search", sa.column("rowid", sa.Integer), sa.column("links_search"))


def text_of(code: str, url: str, title: str | None, tags: Sequence[str]) -> str:
    """What a search matches of a link: `links.search`."""
    return "\n".join([code, url, title or "", *tags]).casefold()


def checked_query(q: str | None) -> str | None:
    """A search's query as it is matched (case-folded, trimmed); None for none or only
    spaces; a 422 naming `q` for one too long or holding a control character."""
    if q is None:
        return None
    if len(q) > MAX_QUERY:
        raise invalid("q", f"must be at most {MAX_QUERY} characters", location="query")
    if _CONTROL.search(q):
        raise invalid("q", "must not contain control characters", location="query")
    return q.strip().casefold() or None


@dataclass(frozen=True, slots=True)
class Search:
    """What a listing asks for: the links matching `query` (as checked_query gives it;
    None: every link) that carry every one of `tags`, on one domain if `domain_id` is
    set, in `sort`'s order."""

    query: str | None = None
    tags: tuple[str, ...] = ()
    domain_id: int | None = None
    sort: Sort = "newest"

    @property
    def ordering(self) -> str:
        """The name a cursor carries: the sort and a digest of the filters, so that a
        cursor is taken only by the listing that made it."""
        filters = orjson.dumps([self.query, sorted(set(self.tags)), self.domain_id])
        return f"{self.sort}.{hashlib.sha256(filters).hexdigest()[:12]}"

    def orderings(self) -> tuple[str, ...]:
        # Before searching, a cursor was "id:<last id>" whatever the filters.
        return (self.ordering, "id") if self.sort == "newest" else (self.ordering,)

    def position(self, row: Any) -> Position:
        """Where a page ending at `row` ended."""
        return Position(row.id, row.code if self.sort == "code" else None)


async def narrowed(
    conn: AsyncConnection,
    query: sa.Select[Any],
    search: Search,
    *,
    owner: int | None,
    after: Position | None,
    limit: int,
) -> sa.Select[Any]:
    """`query` (links' rows, already limited to those the caller sees: `owner`'s, or
    every user's for None) narrowed to `search`'s page after `after`: `limit` rows."""
    if search.domain_id is not None:
        query = query.where(links.c.domain_id == search.domain_id)
    sqlite = conn.dialect.name == "sqlite"
    if search.query is not None:
        query = query.where(
            sa.func.instr(links.c.search, search.query) > 0 if sqlite else _like(search.query)
        )
    tags = sorted(set(search.tags))
    # FTS5 hands its rows over in rowid order: newest or oldest first, a page reads
    # only as many as it needs (by code, it would read them all).
    if (
        sqlite
        and search.query is not None
        and len(search.query) >= _TRIGRAM
        and (search.sort != "code" or not await _many(conn, search.query, owner))
    ):
        matched = _carrying(query, tags).join(_fts, _fts.c.rowid == links.c.id)
        matched = matched.where(_fts.c.links_search.match(_fts_query(search.query, owner)))
        return _paged(matched, search, _fts.c.rowid, after).limit(limit)
    if not tags:
        return _paged(query, search, links.c.id, after).limit(limit)
    # The links with the first tag, in id order, from its index (tag, link_id).
    first = link_tags.alias("first_tag")
    query = query.join(first, sa.and_(first.c.link_id == links.c.id, first.c.tag == tags[0]))
    return _paged(_carrying(query, tags[1:]), search, first.c.link_id, after).limit(limit)


def _carrying(query: sa.Select[Any], tags: Sequence[str]) -> sa.Select[Any]:
    for tag in tags:
        query = query.where(
            sa.exists().where(link_tags.c.link_id == links.c.id, link_tags.c.tag == tag)
        )
    return query


def _paged(
    query: sa.Select[Any], search: Search, ids: ColumnElement[int], after: Position | None
) -> sa.Select[Any]:
    """`query` in `search`'s order, after `after`. `ids`: the links' ids, as the table
    that gives the rows in id order names them."""
    if search.sort == "newest":
        if after is not None:
            query = query.where(ids < after.last_id)
        return query.order_by(ids.desc())
    if search.sort == "oldest":
        if after is not None:
            query = query.where(ids > after.last_id)
        return query.order_by(ids)
    if after is not None:
        query = query.where(sa.tuple_(links.c.code, links.c.id) > (after.key or "", after.last_id))
    return query.order_by(links.c.code, links.c.id)


def _like(folded: str) -> ColumnElement[bool]:
    # PostgreSQL's LIKE escapes with a backslash unless told otherwise.
    escaped = folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return links.c.search.like(f"%{escaped}%")


def _trigrams(text: str) -> str:
    """An FTS5 query for the rows holding every trigram of `text`."""
    grams = dict.fromkeys(text[i : i + _TRIGRAM] for i in range(len(text) - _TRIGRAM + 1))
    return " AND ".join('"' + gram.replace('"', '""') + '"' for gram in grams)


def _fts_query(folded: str, owner: int | None) -> str:
    body = f"body:({_trigrams(folded)})"
    return body if owner is None else f"owner:({_trigrams(f'<{owner}>')}) AND {body}"


async def _many(conn: AsyncConnection, folded: str, owner: int | None) -> bool:
    """Whether the index holds at least _FEW rows that may match."""
    found = (
        sa.select(_fts.c.rowid)
        .where(_fts.c.links_search.match(_fts_query(folded, owner)))
        .limit(_FEW)
        .subquery()
    )
    count = (await conn.execute(sa.select(sa.func.count()).select_from(found))).scalar_one()
    return int(count) >= _FEW
