"""The export use case: every link a caller may take out, with its statistics, as JSON
Lines (the kurz format, version 1) or CSV, made a page at a time (docs/export.md).

Nothing is held but a page of links or a chunk of statistics rows: each is read in a
short transaction of its own, turned into bytes, and handed on before the next is
read, so that memory stays flat however many links there are, and a slow reader
holds no database connection between pieces. The export is therefore no snapshot: a
link changed while it runs is written as it was when its page was read.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa

from kurz import __version__
from kurz.clock import utcnow
from kurz.db import Database
from kurz.db.tables import users
from kurz.errors import not_found
from kurz.exports import queries
from kurz.exports.models import FORMAT, ROWS_PER_LINE, VERSION, ExportFormat
from kurz.exports.queries import ROLLUPS, AnyRow, Exported, Rollup
from kurz.links.domains import Redirects, default_domain
from kurz.types import Clock

# Links read a page at a time, and statistics rows a chunk at a time.
PAGE_SIZE = 500
CHUNK_ROWS = 5_000
# A JSON value's datetimes as the API writes them (RFC 3339, "Z"); dates as YYYY-MM-DD.
_JSON = orjson.OPT_UTC_Z
MEDIA_TYPES: dict[ExportFormat, str] = {"jsonl": "application/jsonl", "csv": "text/csv"}
# Tags in one CSV cell: a line feed, which no tag can hold (they refuse control
# characters), so that splitting the cell gives each tag back exactly.
TAG_SEPARATOR = "\n"
CSV_COLUMNS = (
    "code", "short_url", "url", "domain", "title", "description", "image", "tags",
    "alias", "redirect_status", "forward_query", "password_protected", "valid_from",
    "expires_at", "max_visits", "visits", "clicks", "created_at", "updated_at", "owner",
)  # fmt: skip
# A spreadsheet runs a cell that begins with one of these as a formula (OWASP, "CSV
# injection"): in the free-text columns such a cell gets a leading apostrophe.
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class Counts:
    """What an export has written so far; the `end` line's figures once it is done."""

    links: int = 0
    deleted_links: int = 0
    clicks_daily: int = 0
    clicks_hourly: int = 0
    breakdowns_daily: int = 0

    def add(self, rollup: Rollup, rows: int) -> None:
        setattr(self, rollup.line, getattr(self, rollup.line) + rows)


class Export:
    """One export: its bytes, piece by piece, and what it has written so far.

    `begin` makes the first piece (the header and the first page of links): a
    database that does not answer then fails the request, before any byte is sent.
    """

    def __init__(
        self, pieces: AsyncIterator[bytes], *, media_type: str, filename: str, counts: Counts
    ) -> None:
        self._pieces = pieces
        self._first: bytes | None = None
        self.media_type = media_type
        self.filename = filename
        self.counts = counts

    async def begin(self) -> None:
        self._first = await anext(self._pieces)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._first is None:
            await self.begin()
        assert self._first is not None
        yield self._first
        async for piece in self._pieces:
            yield piece


class Exports:
    """Exports of the links of one user, or of every link."""

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        base_url: str,
        page_size: int = PAGE_SIZE,
        chunk_rows: int = CHUNK_ROWS,
    ) -> None:
        self.db = db
        self.clock = clock
        self.base_url = base_url.rstrip("/")
        self.default_host = default_domain(base_url, Redirects()).host
        self.page_size = page_size
        self.chunk_rows = chunk_rows

    def open(self, *, export_format: ExportFormat, user_id: int | None, statistics: bool) -> Export:
        """An export of `user_id`'s live links, or (None) of every link, tombstones
        included (JSON Lines only); with their statistics if `statistics`."""
        counts = Counts()
        now = utcnow(self.clock)
        stamp = now.strftime("%Y%m%dT%H%M%SZ")
        if export_format == "csv":
            pieces = self._csv(user_id=user_id, statistics=statistics, counts=counts)
        else:
            pieces = self._jsonl(now, user_id=user_id, statistics=statistics, counts=counts)
        return Export(
            pieces,
            media_type=MEDIA_TYPES[export_format],
            filename=f"kurz-export-{stamp}.{export_format}",
            counts=counts,
        )

    async def _pages(self, *, user_id: int | None, deleted: bool) -> AsyncIterator[list[Exported]]:
        """The links, a page at a time (the first even when empty)."""
        after = 0
        while True:
            async with self.db.read() as conn:
                page = await queries.links_page(
                    conn, user_id=user_id, after=after, limit=self.page_size,
                    base_url=self.base_url, deleted=deleted,
                )  # fmt: skip
            yield page
            if len(page) < self.page_size:
                return
            after = page[-1].id

    async def _email(self, user_id: int) -> str:
        async with self.db.read() as conn:
            email = (
                await conn.execute(sa.select(users.c.email).where(users.c.id == user_id))
            ).scalar_one_or_none()
        if email is None:
            raise not_found(f"No user with id {user_id}.")
        return str(email)

    async def _jsonl(
        self, now: datetime, *, user_id: int | None, statistics: bool, counts: Counts
    ) -> AsyncIterator[bytes]:
        header = {
            "type": "export",
            "format": FORMAT,
            "version": VERSION,
            "exported_at": now,
            "kurz_version": __version__,
            "base_url": self.base_url,
            "default_domain": self.default_host,
            "links": "all" if user_id is None else "user",
            "user": None if user_id is None else await self._email(user_id),
            "statistics": statistics,
        }
        head: list[bytes] = [orjson.dumps(header, option=_JSON) + b"\n"]
        async for page in self._pages(user_id=user_id, deleted=user_id is None):
            yield b"".join([*head, *(_link_line(item, counts) for item in page)])
            head = []
            if statistics and page:
                async for piece in self._statistics(page, counts):
                    yield piece
        end = {"type": "end", **{f.name: getattr(counts, f.name) for f in fields(counts)}}
        yield orjson.dumps(end) + b"\n"

    async def _statistics(self, page: list[Exported], counts: Counts) -> AsyncIterator[bytes]:
        """The page's rollup rows, a chunk at a time, as lines of at most ROWS_PER_LINE."""
        ids = [item.id for item in page]
        links = {
            item.id: {
                "domain": item.link.domain,
                "default_domain": item.default_domain,
                "code": item.link.code,
            }
            for item in page
        }
        for rollup in ROLLUPS:
            after: AnyRow | None = None
            while True:
                async with self.db.read() as conn:
                    rows = await queries.rollup_rows(
                        conn, rollup, link_ids=ids, after=after, limit=self.chunk_rows
                    )
                if rows:
                    counts.add(rollup, len(rows))
                    yield b"".join(_stats_lines(rollup, rows, links))
                if len(rows) < self.chunk_rows:
                    break
                after = rows[-1]

    async def _csv(
        self, *, user_id: int | None, statistics: bool, counts: Counts
    ) -> AsyncIterator[bytes]:
        head = True
        async for page in self._pages(user_id=user_id, deleted=False):
            clicks: dict[int, int] = {}
            if statistics and page:
                async with self.db.read() as conn:
                    clicks = await queries.clicks_of(conn, [item.id for item in page])
            out = io.StringIO(newline="")
            writer = csv.writer(out)
            if head:
                writer.writerow(CSV_COLUMNS)
                head = False
            for item in page:
                counts.links += 1
                writer.writerow(_csv_row(item, clicks.get(item.id, 0) if statistics else None))
            yield out.getvalue().encode()


def _link_line(item: Exported, counts: Counts) -> bytes:
    counts.links += 1
    counts.deleted_links += item.deleted_at is not None
    line = {
        "type": "link",
        "id": item.id,
        **item.link.model_dump(mode="json"),
        "owner": item.owner,
        "default_domain": item.default_domain,
        "visits": item.visits,
        "password_hash": item.password_hash,
        "deleted_at": item.deleted_at,
    }
    return orjson.dumps(line, option=_JSON) + b"\n"


def _row(names: tuple[str, ...], row: AnyRow) -> dict[str, Any]:
    """A rollup row as a line holds it: its columns after link_id (`names`), in key
    order; a day as a date."""
    return {
        name: value.date() if name == "day" else value
        for name, value in zip(names, row[1:], strict=True)
    }


def _stats_lines(
    rollup: Rollup, rows: list[AnyRow], links: dict[int, dict[str, Any]]
) -> Iterator[bytes]:
    """Consecutive rows of one link as one line, ROWS_PER_LINE at most."""
    start, names = 0, rollup.fields
    while start < len(rows):
        link_id = rows[start].link_id
        end = start + 1
        while end < len(rows) and end - start < ROWS_PER_LINE and rows[end].link_id == link_id:
            end += 1
        line = {
            "type": rollup.line,
            **links[link_id],
            "rows": [_row(names, row) for row in rows[start:end]],
        }
        yield orjson.dumps(line, option=_JSON) + b"\n"
        start = end


def _when(moment: datetime | None) -> str:
    return "" if moment is None else orjson.dumps(moment, option=_JSON).decode().strip('"')


def _text(value: str | None) -> str:
    if value is None:
        return ""
    return "'" + value if value.startswith(_FORMULA) else value


def _csv_row(item: Exported, clicks: int | None) -> list[str]:
    link = item.link
    return [
        link.code,
        link.short_url,
        link.url,
        link.domain or "",
        _text(link.og_title),
        _text(link.og_description),
        link.og_image or "",
        _text(TAG_SEPARATOR.join(link.tags)),
        "true" if link.alias else "false",
        str(link.redirect_status),
        "true" if link.forward_query else "false",
        "true" if link.password_protected else "false",
        _when(link.valid_from),
        _when(link.expires_at),
        "" if link.max_visits is None else str(link.max_visits),
        str(item.visits),
        "" if clicks is None else str(clicks),
        _when(link.created_at),
        _when(link.updated_at),
        item.owner,
    ]
