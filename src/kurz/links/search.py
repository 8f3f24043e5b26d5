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
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from kurz.db.keyset import Position
from kurz.db.tables import link_tags, links
from kurz.errors import invalid

MAX_QUERY = 200
Sort = Literal["newest", "oldest", "code"]
SORTS: tuple[Sort, ...] = ("newest", "oldest", "code")

# A query holds no control character, so no match can span two of the text's lines.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# The length of what the index holds; a shorter query is a prefix of what it holds.
_TRIGRAM = 3
# A shorter query found at more places than this in the index is a common one: the
# links are then read in order until a page is full, which is soon (see _holding).
_MOST_PLACES = 2000
# The trigrams of a query that FTS5 is asked for, at most: spread over the query.
_MOST_TRIGRAMS = 8
# SQLite by code: fewer matches than this are sorted, more are found walking the index
# by code, which then meets a match at least every (links / _FEW) rows.
_FEW = 1000

# The FTS5 table migration 0013 makes on SQLite (not in kurz.db.tables: see there).
_fts = sa.table("links_search", sa.column("rowid", sa.Integer), sa.column("links_search"))
# Its trigrams in order, each with the rows and columns holding it (migration 0015).
_terms = sa.table(
    "links_search_terms", sa.column("term", sa.Text), sa.column("doc"), sa.column("col")
)


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
    tags = sorted(set(search.tags))
    if conn.dialect.name != "sqlite" or search.query is None:
        # PostgreSQL's planner weighs the trigram index against the others itself.
        if search.query is not None:
            query = query.where(_like(search.query))
        return _by_tags(query, tags, search, after).limit(limit)
    query = query.where(sa.func.instr(links.c.search, search.query) > 0)
    indexed = len(search.query) >= _TRIGRAM
    if not indexed and (held := await _holding(conn, search.query)) is not None:
        # A rare short query: those links, sorted (the unary + as below).
        code = UnaryExpression(links.c.code, operator=custom_op("+"), type_=links.c.code.type)
        few = _carrying(query, tags).where(links.c.id.in_(held))
        return _paged(few, search, links.c.id, after, code).limit(limit)
    matched = _carrying(query, tags)
    if indexed:
        matched = matched.join(_fts, _fts.c.rowid == links.c.id).where(
            _fts.c.links_search.match(_fts_query(search.query, owner))
        )
    if search.sort != "code":
        # FTS5 hands its rows over in rowid order: a page reads as many as it needs.
        if indexed:
            return _paged(matched, search, _fts.c.rowid, after).limit(limit)
        return _by_tags(query, tags, search, after).limit(limit)
    # By code, SQLite cannot tell a rare query from a common one: it would walk the
    # index by code either way, reading every link for a rare one. So it is asked.
    # (In the order the rows come in, which keeps the FTS5 table driving the query.)
    probe = matched.with_only_columns(links.c.id, maintain_column_froms=True)
    probe = probe.order_by(_fts.c.rowid if indexed else links.c.id).limit(_FEW)
    ids = list((await conn.execute(probe)).scalars())
    if len(ids) < _FEW:
        # The unary + keeps SQLite from walking the index by code to find them.
        code = UnaryExpression(links.c.code, operator=custom_op("+"), type_=links.c.code.type)
        few = _carrying(query, tags).where(links.c.id.in_(ids))
        return _paged(few, search, links.c.id, after, code).limit(limit)
    return _paged(_carrying(query, tags), search, links.c.id, after).limit(limit)


async def _holding(conn: AsyncConnection, short: str) -> list[int] | None:
    """The live links whose search text may hold `short`, a query of one or two
    characters, as the index finds them; None when it is found at more than
    _MOST_PLACES places (in anyone's links: a common query).

    Each occurrence of `short` begins a trigram of the index, since the index holds
    each text followed by two newlines: the trigrams beginning with it are a range of
    the index's vocabulary, whose rows name the links holding each."""
    places = (
        sa.select(_terms.c.doc)
        .where(_terms.c.term >= short, _terms.c.col == "body")
        .where(sa.func.substr(_terms.c.term, 1, len(short)) == short)
        .limit(_MOST_PLACES + 1)
    )
    if (bound := _next_text(short)) is not None:
        places = places.where(_terms.c.term < bound)
    docs = list((await conn.execute(places)).scalars())
    return None if len(docs) > _MOST_PLACES else sorted(set(docs))


def _next_text(text: str) -> str | None:
    """The first text after every one beginning with `text`, by code point (which is
    how FTS5 orders its UTF-8 terms); None when there is none."""
    last = ord(text[-1]) + 1
    if 0xD800 <= last <= 0xDFFF:  # surrogates are no characters of a text
        last = 0xE000
    return None if last > 0x10FFFF else text[:-1] + chr(last)


def _by_tags(
    query: sa.Select[Any], tags: Sequence[str], search: Search, after: Position | None
) -> sa.Select[Any]:
    """`query` narrowed to the links carrying every one of `tags`, in order."""
    if not tags:
        return _paged(query, search, links.c.id, after)
    # The links with the first tag, in id order, from its index (tag, link_id).
    first = link_tags.alias("first_tag")
    query = query.join(first, sa.and_(first.c.link_id == links.c.id, first.c.tag == tags[0]))
    return _paged(_carrying(query, tags[1:]), search, first.c.link_id, after)


def _carrying(query: sa.Select[Any], tags: Sequence[str]) -> sa.Select[Any]:
    for tag in tags:
        query = query.where(
            sa.exists().where(link_tags.c.link_id == links.c.id, link_tags.c.tag == tag)
        )
    return query


def _paged(
    query: sa.Select[Any],
    search: Search,
    ids: ColumnElement[int],
    after: Position | None,
    code: ColumnElement[str] = links.c.code,
) -> sa.Select[Any]:
    """`query` in `search`'s order, after `after`. `ids`: the links' ids, as the table
    that gives the rows in id order names them; `code`: their codes."""
    if search.sort == "newest":
        if after is not None:
            query = query.where(ids < after.last_id)
        return query.order_by(ids.desc())
    if search.sort == "oldest":
        if after is not None:
            query = query.where(ids > after.last_id)
        return query.order_by(ids)
    if after is not None:
        query = query.where(sa.tuple_(code, links.c.id) > (after.key or "", after.last_id))
    return query.order_by(code, links.c.id)


def _like(folded: str) -> ColumnElement[bool]:
    # PostgreSQL's LIKE escapes with a backslash unless told otherwise.
    escaped = folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return links.c.search.like(f"%{escaped}%")


def _trigrams(text: str) -> str:
    """An FTS5 query for the rows holding every trigram of `text` (some of them, for a
    long text: the rows the text decides among are as few, and each trigram costs)."""
    grams = list(dict.fromkeys(text[i : i + _TRIGRAM] for i in range(len(text) - _TRIGRAM + 1)))
    if len(grams) > _MOST_TRIGRAMS:
        step = (len(grams) - 1) / (_MOST_TRIGRAMS - 1)
        grams = [grams[round(n * step)] for n in range(_MOST_TRIGRAMS)]
    return " AND ".join('"' + gram.replace('"', '""') + '"' for gram in grams)


def _fts_query(folded: str, owner: int | None) -> str:
    body = f"body:({_trigrams(folded)})"
    return body if owner is None else f"owner:({_trigrams(f'<{owner}>')}) AND {body}"
