"""kurz's own export read back (the kurz format, version 1: docs/export.md), so that an
export imported into another kurz is a copy of it (docs/imports/kurz.md).

Each line is checked by the models that wrote it (`kurz.exports.models.LINE`). The
export writes a page of links and then their statistics, and a page of this source
gives each link with all of its statistics (kurz.imports.sources.Clicks); so the file
is read a block at a time, a run of `link` lines and the statistics lines after it:
once through, noting where each link's statistics lines are (an offset a line), then
link by link, seeking to them. A position is two byte offsets, "BLOCK:NEXT", the
block's start and its next link line: the file is read as bytes, so a resumed import
seeks straight to them.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

from pydantic import ValidationError

from kurz.exports.models import ExportEnd
from kurz.imports import kurz_lines
from kurz.imports.sources import (
    Clicks,
    Item,
    Opening,
    Page,
    SourceError,
    SourceKind,
    Unreadable,
)

# A page ends after this many link lines (a line that could not be read counts as
# one), or once its statistics lines hold this many rows (a line holds at most
# kurz.exports.models.ROWS_PER_LINE, so a page holds at most that many more).
LINKS_PER_PAGE = 500
ROWS_PER_PAGE = 5_000
# No line kurz writes comes near this; a longer one is skipped, never held whole.
MAX_LINE = 16 * 2**20
# The `end` line is well under this: total() reads no more of the file's end.
_TAIL = 4_096
_CHUNK = 2**20
CUT_SHORT = "the file ends without its `end` line: it was cut short"
UNKNOWN_LINK = "statistics of a link that no `link` line before them gives"
TOO_LONG = f"a line longer than {MAX_LINE // 2**20} MiB, which kurz never writes"


class KurzFile:
    """A kurz export on local disk."""

    def __init__(
        self,
        path: Path,
        *,
        links_per_page: int = LINKS_PER_PAGE,
        rows_per_page: int = ROWS_PER_PAGE,
    ) -> None:
        self.path = path
        self.links_per_page = links_per_page
        self.rows_per_page = rows_per_page

    async def total(self) -> int | None:
        """The `end` line's count of links, read from the file's last bytes."""
        return await asyncio.to_thread(_end_links, self.path)

    async def pages(self, after: str | None) -> AsyncIterator[Page]:
        reader = await asyncio.to_thread(_Reader.open, self, after)
        try:
            while (page := await asyncio.to_thread(reader.page)) is not None:
                yield page
        finally:
            reader.close()

    async def aclose(self) -> None:
        return None


@dataclass
class _Block:
    """A run of `link` lines and the run of statistics lines after it, as the export
    writes a page of links and then their statistics: where each link's statistics
    lines are, so that a page gives a link with all of them."""

    # Its link lines run from `start` to `links_end`, its statistics lines to `end`.
    start: int
    links_end: int
    end: int
    # The number of the line at `end`.
    end_line: int
    # What follows it: the next block, the `end` line, or the end of the file.
    ends: Literal["link", "end", "eof"]
    # Where the statistics lines of each link are, by the name they give it.
    stats: dict[str, list[_At]] = field(default_factory=dict)
    # Lines among the statistics that name no link: each is reported.
    loose: list[_At] = field(default_factory=list)
    # The `end` line's length, for `ends` "end".
    end_length: int = 0


@dataclass(frozen=True, slots=True)
class _At:
    offset: int
    line: int


class _Reader:
    """The file open at a position: each call of `page` reads the next page."""

    def __init__(self, source: KurzFile, file: IO[bytes], *, offset: int) -> None:
        self.source = source
        self.file = file
        self.size = os.fstat(file.fileno()).st_size
        # The block being read, from `start`, and the next link line of it, `next`,
        # which is line number `line`.
        self.start = self.next = offset
        self.line = 2
        self.block: _Block | None = None
        self.done = False

    @classmethod
    def open(cls, source: KurzFile, after: str | None) -> _Reader:
        try:
            file = source.path.open("rb")
        except OSError as exc:
            raise SourceError(f"the file cannot be read: {exc.strerror}") from exc
        try:
            header = _read(file)
            kurz_lines.check_header(header[1] or b"")
            reader = cls(source, file, offset=header[0])
            if after is not None:
                reader.resume(after)
        except BaseException:
            file.close()
            raise
        return reader

    def close(self) -> None:
        self.file.close()

    def resume(self, after: str) -> None:
        """Go on from a page's position: its block, and the next link line in it."""
        start, _, following = after.partition(":")
        if not (_number(start) and _number(following)):
            raise SourceError(f"the position {after!r} is not one this source gives")
        offset, going_on = int(start), int(following)
        if not self.start <= offset <= going_on <= self.size:
            raise SourceError(f"the position {after!r} is not in the file")
        self.file.seek(offset - 1)
        # The end of a file cut short in a line is where its last page ended.
        if self.file.read(1) != b"\n" and offset < self.size:
            raise SourceError(f"the position {after!r} is not the start of a line")
        if offset >= self.size:
            self.done = True
            return
        self.file.seek(0)
        newlines, left = 0, offset
        while left:
            chunk = self.file.read(min(left, _CHUNK))
            newlines += chunk.count(b"\n")
            left -= len(chunk)
        self.start = self.next = offset
        self.line = newlines + 1
        block = self._scan()
        if going_on > block.links_end:
            raise SourceError(f"the position {after!r} is not in the file")
        # The links given before it: their statistics were given with them.
        while self.next < going_on:
            _, text = self._next_link()
            if text is not None:
                block.stats.pop(kurz_lines.named(text) or "", None)
        if self.next != going_on:
            raise SourceError(f"the position {after!r} is not the start of a line")

    def page(self) -> Page | None:
        """The next page; None once the file has been read to its end."""
        if self.done:
            return None
        block = self.block or self._scan()
        items: list[Item] = []
        links = rows = 0
        while (
            self.next < block.links_end
            and links < self.source.links_per_page
            and rows < self.source.rows_per_page
        ):
            at, text = self._next_link()
            if text is not None and not text.strip():
                continue
            place = f"line {at.line}"
            entry = Unreadable(place, TOO_LONG) if text is None else kurz_lines.link(place, text)
            items.append(entry)
            links += 1
            stats = block.stats.pop(entry.source_id or "", [])
            if isinstance(entry, Unreadable):
                # A link that cannot be read is not imported, nor its statistics.
                continue
            for stats_at in stats:
                item = self._stats(stats_at)
                items.append(item)
                if isinstance(item, Clicks):
                    rows += len(item.daily) + len(item.hourly) + len(item.breakdowns)
        if self.next >= block.links_end:
            items += self._finish(block)
        if self.done and not items:
            return None
        return Page(items=items, position=f"{self.start}:{self.next}")

    def _finish(self, block: _Block) -> list[Item]:
        """What is left of a block once its links are given, and on to the next."""
        left = [
            Unreadable(f"line {at.line}", UNKNOWN_LINK, name)
            for name, places in block.stats.items()
            for at in places
        ]
        left += [self._loose(at) for at in block.loose]
        left.sort(key=lambda item: int(item.place.removeprefix("line ")))
        self.block = None
        self.start = self.next = block.end
        self.line = block.end_line
        if block.ends == "end":
            after_end = block.end + block.end_length
            if after_end < self.size:
                rest = f"{self.size - after_end:,} bytes after the `end` line are not read"
                left.append(Unreadable(f"line {block.end_line + 1}", rest))
        elif block.ends == "eof":
            left.append(Unreadable(f"line {block.end_line}", CUT_SHORT))
        if block.ends != "link":
            self.start = self.next = self.size
            self.done = True
        return list(left)

    def _scan(self) -> _Block:
        """The block from `start`: read through, noting where its statistics are."""
        self.file.seek(self.start)
        offset, line = self.start, self.line
        links_end: int | None = None
        stats: dict[str, list[_At]] = {}
        loose: list[_At] = []
        ends: Literal["link", "end", "eof"] = "eof"
        length = 0
        while True:
            length, text = _read(self.file)
            if not length:
                break
            kind, name = kurz_lines.classify(text)
            if kind == "end":
                ends = "end"
                break
            if links_end is None and kind == "stats":
                links_end = offset
            if links_end is not None:
                if kind == "link":
                    ends = "link"
                    break
                if kind == "stats" and name is not None:
                    stats.setdefault(name, []).append(_At(offset, line))
                elif kind != "blank":
                    loose.append(_At(offset, line))
            offset += length
            line += 1
        self.block = _Block(
            start=self.start,
            links_end=offset if links_end is None else links_end,
            end=offset,
            end_line=line,
            ends=ends,
            stats=stats,
            loose=loose,
            end_length=length if ends == "end" else 0,
        )
        return self.block

    def _next_link(self) -> tuple[_At, bytes | None]:
        at = _At(self.next, self.line)
        self.file.seek(self.next)
        length, text = _read(self.file)
        self.next += length
        self.line += 1
        return at, text

    def _stats(self, at: _At) -> Item:
        self.file.seek(at.offset)
        _, text = _read(self.file)
        item = kurz_lines.parse(f"line {at.line}", text or b"")
        return item if isinstance(item, Clicks | Unreadable) else _misplaced(at)

    def _loose(self, at: _At) -> Unreadable:
        self.file.seek(at.offset)
        _, text = _read(self.file)
        place = f"line {at.line}"
        if text is None:
            return Unreadable(place, TOO_LONG)
        item = kurz_lines.parse(place, text)
        return item if isinstance(item, Unreadable) else _misplaced(at)


def _read(file: IO[bytes]) -> tuple[int, bytes | None]:
    """The next line's length in bytes, and the line: None for one too long to be
    kurz's, which is passed over unread. (0, b"") at the end of the file."""
    text = file.readline(MAX_LINE + 1)
    if len(text) <= MAX_LINE or text.endswith(b"\n"):
        return len(text), text
    length = len(text)
    while not text.endswith(b"\n"):
        text = file.readline(_CHUNK)
        if not text:
            break
        length += len(text)
    return length, None


def _number(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _misplaced(at: _At) -> Unreadable:
    return Unreadable(f"line {at.line}", "a line out of its place in the file")


def _end_links(path: Path) -> int | None:
    try:
        with path.open("rb") as file:
            kurz_lines.check_header(file.readline(MAX_LINE + 1))
            size = os.fstat(file.fileno()).st_size
            file.seek(max(0, size - _TAIL))
            tail = file.read()
    except (OSError, SourceError):
        return None
    last = tail.rstrip(b"\r\n").rsplit(b"\n", 1)[-1]
    try:
        return ExportEnd.model_validate_json(last).links
    except ValidationError:
        return None


def _open(opening: Opening) -> KurzFile:
    if opening.file is None:
        raise SourceError("a kurz export is a file, and none was given")
    return KurzFile(opening.file)


KIND = SourceKind(
    name="kurz",
    title="kurz (an export, JSON Lines)",
    source="kurz",
    takes_file=True,
    open=_open,
    doc="docs/imports/kurz.md",
    notes=(
        "The file `kurz export` writes, or GET /api/v1/export?format=jsonl: every field "
        "of every link, tombstones and statistics included.",
        "A link on the exporting kurz's default domain goes to this kurz's default "
        "domain; a link on another domain needs that domain here.",
    ),
)
