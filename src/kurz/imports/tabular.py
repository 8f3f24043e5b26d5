"""A CSV file read a page of records at a time: what the file sources share
(docs/imports/csv.md).

The file is UTF-8 (a byte order mark is dropped), comma-, semicolon- or tab-separated
(told from the header line, or from an Excel `sep=` line before it), with a header
row naming its columns; it is read a line at a time, never whole. Each kind says
which columns it reads and by what names (`Column`), and how a row becomes items
(`RowReader`). A page's position is the count of records read after the header:
going on from it reads the file again from the start and passes over that many,
which keeps no state beside the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import re
from collections import deque
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from kurz.imports import cells
from kurz.imports.cells import CellError
from kurz.imports.sources import Item, Page, SourceError, Unreadable

PAGE_RECORDS = 500
_LONE_CR = re.compile(r"(?<=\r)(?!\n)")
_DELIMITERS = (",", ";", "\t")
_SEP_LINE = re.compile(r"sep=(.)")
# What the first bytes of a file that is no CSV text often are.
_NOT_TEXT = {
    b"\xff\xfe": "UTF-16 text; kurz reads UTF-8",
    b"\xfe\xff": "UTF-16 text; kurz reads UTF-8",
    b"PK\x03\x04": "a ZIP archive (an .xlsx workbook?), not CSV text",
    b"\xd0\xcf\x11\xe0": "an Excel .xls workbook, not CSV text",
}
_SAVE_AS = "Save it as UTF-8 (\u201cCSV UTF-8\u201d in a spreadsheet) and import it again."


@dataclass(frozen=True, slots=True)
class Column:
    """A column a kind reads: its field, and the header names it goes by, in order of
    preference (compared as `normal` makes them: "Long URL" is "long_url")."""

    field: str
    names: tuple[str, ...]
    # For people, in errors: "the long URL".
    label: str = ""
    required: bool = False


@dataclass(frozen=True, slots=True)
class Header:
    """The header row: its names as the file has them, and the column of each field."""

    names: tuple[str, ...]
    fields: Mapping[str, int]

    def normal_names(self) -> tuple[str, ...]:
        return tuple(normal(name) for name in self.names)

    def shown(self) -> str:
        """Its names for people, in an error."""
        shown = ", ".join(repr(name) for name in self.names[:30])
        more = f" and {len(self.names) - 30} more" if len(self.names) > 30 else ""
        return shown + more if shown else "nothing"


@dataclass(frozen=True, slots=True)
class Row:
    """A record of the file: its place ("line 12") and its cells by field, stripped."""

    place: str
    cells: Mapping[str, str]
    # The header's name of each field's column, for errors.
    names: Mapping[str, str]

    def get(self, field: str) -> str | None:
        """The cell of `field`; None when the file has no such column or it is blank."""
        return self.cells.get(field) or None

    def when(self, field: str) -> datetime | None:
        value = self.get(field)
        return None if value is None else cells.when(value, column=self._name(field))

    def count(self, field: str) -> int:
        value = self.get(field)
        return 0 if value is None else cells.count(value, column=self._name(field))

    def _name(self, field: str) -> str:
        return self.names.get(field, field)


# How a kind reads a row; raises CellError for a row it cannot read.
RowReader = Callable[[Row], Sequence[Item]]


def normal(name: str) -> str:
    """A header name as columns are matched: lower case, letters and digits only."""
    return "".join(char for char in name.casefold() if char.isalnum())


class CsvSource:
    """A CSV file as a source (kurz.imports.sources.Source)."""

    def __init__(
        self,
        path: Path,
        *,
        columns: Sequence[Column],
        reader: Callable[[Header], RowReader],
        page_records: int = PAGE_RECORDS,
    ) -> None:
        self.path = path
        self.columns = columns
        self.reader = reader
        self.page_records = page_records

    async def total(self) -> int | None:
        try:
            return await asyncio.to_thread(self._count)
        except SourceError:
            return None  # pages() says why

    async def pages(self, after: str | None) -> AsyncIterator[Page]:
        pages = self._pages(_skip(after))
        try:
            while (page := await asyncio.to_thread(next, pages, None)) is not None:
                yield page
        finally:
            # A page still being read in its thread (the import cancelled) closes the
            # file when it is dropped.
            with contextlib.suppress(ValueError):
                pages.close()

    async def aclose(self) -> None:
        pass

    def _count(self) -> int:
        with self._open() as (_, records):
            return sum(1 for _, cells in records if not _blank(cells))

    def _pages(self, after: int) -> Generator[Page, None, None]:
        with self._open() as (header, records):
            read = self.reader(header)
            items: list[Item] = []
            consumed = 0
            for line, cells in records:
                consumed += 1
                if consumed <= after:
                    continue
                if isinstance(cells, csv.Error):
                    items.append(Unreadable(f"line {line}", _csv_reason(cells)))
                elif not _blank(cells):
                    items.extend(_read(read, header, f"line {line}", cells))
                if (consumed - after) % self.page_records == 0:
                    yield Page(items, str(consumed))
                    items = []
            if items:
                yield Page(items, str(consumed))

    @contextlib.contextmanager
    def _open(self) -> Iterator[tuple[Header, Iterator[tuple[int, list[str] | csv.Error]]]]:
        try:
            with self.path.open("rb") as raw:
                lines = _Lines(raw)
                delimiter = _dialect(lines, self.columns)
                reader = csv.reader(lines, delimiter=delimiter)
                header = _header(reader, self.columns)
                yield header, _records(reader, lines)
        except OSError as error:
            raise SourceError(f"The file cannot be read: {error.strerror or error}.") from None


class _Lines:
    """The file's lines as the CSV reader takes them: decoded from UTF-8 a line at a
    time (so that a byte that is not UTF-8 is found with its line), ended by a line
    feed, a carriage return or both, and counted; one may be put back."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._read = 0
        self._ahead: deque[str] = deque()
        self._back: str | None = None
        self.count = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self._back is not None:
            line, self._back = self._back, None
            return line
        if not self._ahead:
            self._ahead.extend(self._decoded())
        self.count += 1
        return self._ahead.popleft()

    def put_back(self, line: str) -> None:
        self._back = line

    def _decoded(self) -> list[str]:
        data = self._raw.readline()
        if not data:
            raise StopIteration
        if self._read == 0:
            for magic, what in _NOT_TEXT.items():
                if data.startswith(magic):
                    raise SourceError(f"The file is {what}. {_SAVE_AS}")
        try:
            text = data.decode()
        except UnicodeDecodeError as error:
            cut = error.reason == "unexpected end of data"
            byte = None if cut else data[error.start]
            raise _not_utf8(self.count + 1, self._read + error.start, byte) from None
        if self._read == 0:
            text = text.removeprefix("\ufeff")
        self._read += len(data)
        # A carriage return alone ends a line too (as in old Mac files).
        return [line for line in _LONE_CR.split(text) if line] if "\r" in text else [text]


def _records(
    reader: Iterator[list[str]], lines: _Lines
) -> Iterator[tuple[int, list[str] | csv.Error]]:
    """Each record with the line it starts on; a record the CSV reader refuses is its
    error (the reader goes on at the next line)."""
    while True:
        line = lines.count + 1
        try:
            yield line, next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield line, error


def _dialect(lines: _Lines, columns: Sequence[Column]) -> str:
    """The delimiter: an Excel `sep=` line's, or the one that splits the header line
    into a column kurz needs (else into the most columns)."""
    first = _first_line(lines)
    if first is None:
        raise SourceError("The file is empty: a CSV file starts with a header row.")
    if sep := _SEP_LINE.fullmatch(first.rstrip("\r\n")):
        header = _first_line(lines)
        if header is None:
            raise SourceError("The file has no header row after its sep= line.")
        lines.put_back(header)
        return sep.group(1)
    lines.put_back(first)
    wanted = {normal(name) for column in columns if column.required for name in column.names}

    def score(delimiter: str) -> tuple[bool, int]:
        try:
            names = next(csv.reader([first], delimiter=delimiter))
        except csv.Error:
            return (False, 0)
        return (any(normal(name) in wanted for name in names), len(names))

    return max(_DELIMITERS, key=score)


def _first_line(lines: _Lines) -> str | None:
    for line in lines:
        if line.strip():
            return line
    return None


def _header(reader: Iterator[list[str]], columns: Sequence[Column]) -> Header:
    try:
        names = tuple(name.strip() for name in next(reader))
    except csv.Error as error:
        raise SourceError(f"The header row cannot be read as CSV: {error}.") from None
    normals = [normal(name) for name in names]
    fields: dict[str, int] = {}
    for column in columns:
        wanted = (normal(name) for name in column.names)
        found = next((normals.index(name) for name in wanted if name in normals), None)
        if found is not None:
            fields[column.field] = found
    header = Header(names, fields)
    for column in columns:
        if column.required and column.field not in fields:
            raise SourceError(
                f"The file has no column for {column.label or column.field}: kurz looks "
                f"for one named {_names(column.names)}. The header row names "
                f"{header.shown()}."
            )
    return header


def _names(names: Sequence[str]) -> str:
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]


def _read(read: RowReader, header: Header, place: str, cells: list[str]) -> Sequence[Item]:
    width = len(header.names)
    if any(cell.strip() for cell in cells[width:]):
        return [
            Unreadable(
                place,
                f"it has {len(cells)} cells where the header has {width} columns "
                "(a value holding the separator that is not in double quotes?)",
            )
        ]
    columns = header.fields.items()
    row = Row(
        place,
        {field: cells[index].strip() for field, index in columns if index < len(cells)},
        {field: header.names[index] for field, index in columns},
    )
    try:
        return read(row)
    except CellError as error:
        return [Unreadable(place, error.reason, error.source_id)]


def _blank(cells: list[str] | csv.Error) -> bool:
    """An empty line, or a row of empty cells (as spreadsheets write below the data)."""
    return not isinstance(cells, csv.Error) and not any(cell.strip() for cell in cells)


def _csv_reason(error: csv.Error) -> str:
    if "field larger than field limit" in str(error):
        return f"a cell is longer than {csv.field_size_limit():,} characters"
    return f"it cannot be read as CSV: {error}"


def _skip(after: str | None) -> int:
    if after is None:
        return 0
    if not after.isdecimal():
        raise SourceError(f"{after!r} is not a position in a CSV file (a count of records).")
    return int(after)


def _not_utf8(line: int, offset: int, byte: int | None) -> SourceError:
    what = f"byte 0x{byte:02X}" if byte is not None else "a character cut short at its end"
    return SourceError(
        f"The file is not UTF-8 text: line {line} has {what} (byte {offset + 1:,} of the "
        f"file), which UTF-8 does not allow. {_SAVE_AS}"
    )
