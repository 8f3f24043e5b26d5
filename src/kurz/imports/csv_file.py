"""Links from a CSV file of any shortener or spreadsheet, kurz's own CSV export among
them: its columns found by their header names (docs/imports/csv.md)."""

from __future__ import annotations

from collections.abc import Sequence

from kurz.exports.service import CSV_COLUMNS
from kurz.imports import cells
from kurz.imports.sources import Clicks, Item, NoSettings, Opening, Record, SourceError, SourceKind
from kurz.imports.tabular import Column, CsvSource, Header, Row, RowReader, normal

# Each field's header names, in order of preference: when a file has two of them, the
# first is read. `code` comes before `alias` because kurz's own export has both, its
# `alias` saying only whether the code was chosen (true/false).
COLUMNS = (
    Column(
        "url",
        ("url", "long_url", "target", "destination", "target_url", "destination_url"),
        label="the long URL",
        required=True,
    ),
    Column("alias", ("code", "alias", "slug", "short_code", "back_half", "keyword")),
    Column("domain", ("domain",)),
    Column("title", ("title",)),
    Column("tags", ("tags", "tag")),
    Column("created_at", ("created_at", "created", "date_created")),
    Column("starts_at", ("valid_from", "starts_at", "starts")),
    Column("expires_at", ("expires_at", "expires")),
    Column("clicks", ("clicks", "total_clicks", "visits", "hits")),
)
_KURZ_EXPORT = tuple(normal(name) for name in CSV_COLUMNS)


def reader(header: Header) -> RowReader:
    # A file kurz exported guarded some cells against spreadsheets: undo that.
    exported = header.normal_names() == _KURZ_EXPORT

    def text(value: str | None) -> str | None:
        return cells.unformula(value) if value is not None and exported else value

    def read(row: Row) -> Sequence[Item]:
        url, alias, domain = row.get("url"), row.get("alias"), row.get("domain")
        if url is None:
            raise cells.CellError("it has no long URL")
        source_id = alias or url
        if domain is not None:
            source_id = f"{domain}/{source_id}"
        tags = text(row.get("tags"))
        try:
            record = Record(
                place=row.place,
                source_id=source_id,
                url=url,
                alias=alias,
                domain=domain,
                title=text(row.get("title")),
                tags=cells.tags(tags) if tags else (),
                created_at=row.when("created_at"),
                starts_at=row.when("starts_at"),
                expires_at=row.when("expires_at"),
            )
            clicks = row.count("clicks")
        except cells.CellError as error:
            raise cells.CellError(error.reason, source_id=source_id) from None
        return [record, Clicks(source_id, total=clicks)] if clicks else [record]

    return read


def open_source(opening: Opening) -> CsvSource:
    if opening.file is None:
        raise SourceError("A CSV import reads a file, and none was given.")
    return CsvSource(opening.file, columns=COLUMNS, reader=reader)


KIND = SourceKind(
    name="csv",
    title="CSV file",
    source="csv",
    takes_file=True,
    open=open_source,
    settings=NoSettings,
    doc="docs/imports/csv.md",
    notes=(
        "UTF-8, with a header row; comma, semicolon or tab between values.",
        "A column named url (or long_url, target, destination) is required; alias (code, "
        "slug, short_code, back_half), domain, title, tags, created_at, valid_from, "
        "expires_at and clicks are read when present.",
        "kurz's own CSV export reads back as it is.",
    ),
)
