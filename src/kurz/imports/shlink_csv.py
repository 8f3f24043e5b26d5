"""Links from Shlink's CSV export of short URLs (docs/imports/shlink.md, "From its CSV
export"): named as Shlink's API names them, so that the CSV and the API import the
same short URL once."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field, field_validator

from kurz.imports import cells
from kurz.imports.sources import Clicks, Item, Opening, Record, SourceError, SourceKind
from kurz.imports.tabular import Column, CsvSource, Header, Row, RowReader

# How Shlink's API names its default domain in a short URL's identity.
DEFAULT = "DEFAULT"

# shlink-web-client's export (its columns: createdAt, domain, shortCode, shortUrl,
# longUrl, title, tags, visits) and the CSV that Shlink's own importer reads (Long
# URL, Short code, Domain, Tags, Title); names compare without case or spaces.
COLUMNS = (
    Column("url", ("longUrl",), label="the long URL", required=True),
    Column("short_code", ("shortCode",)),
    Column("short_url", ("shortUrl",)),
    Column("domain", ("domain",)),
    Column("title", ("title",)),
    Column("tags", ("tags",)),
    Column("created_at", ("createdAt", "dateCreated")),
    Column("visits", ("visits", "visitsCount")),
)


class ShlinkCsvSettings(BaseModel):
    default_domain: str | None = Field(
        default=None,
        description=(
            "Your Shlink's default domain (its DEFAULT_DOMAIN, e.g. s.example). "
            "shlink-web-client's export names every short URL's host; its short URLs on "
            "this one go to the import's domain, as the Shlink API import puts them."
        ),
    )

    @field_validator("default_domain")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        host = (value or "").strip().lower()
        return host or None


def reader(default_domain: str | None) -> RowReader:
    def read(row: Row) -> Sequence[Item]:
        url = row.get("url")
        short_code, domain = _short_code(row), _domain(row)
        if domain is not None and domain.lower() == default_domain:
            domain = None
        if short_code is None:
            raise cells.CellError("it has no short code")
        source_id = f"{domain or DEFAULT}/{short_code}"
        if url is None:
            raise cells.CellError("it has no long URL", source_id=source_id)
        tags = row.get("tags")
        try:
            record = Record(
                place=row.place,
                source_id=source_id,
                url=url,
                alias=short_code,
                domain=domain,
                title=row.get("title"),
                tags=cells.tags(tags, "|" if "|" in tags else ",") if tags else (),
                created_at=row.when("created_at"),
            )
            visits = row.count("visits")
        except cells.CellError as error:
            raise cells.CellError(error.reason, source_id=source_id) from None
        return [record, Clicks(source_id, total=visits)] if visits else [record]

    return read


def _short_code(row: Row) -> str | None:
    if short_code := row.get("short_code"):
        return short_code
    if short_url := row.get("short_url"):
        return cells.short_link(short_url, column="the short URL")[1]
    return None


def _domain(row: Row) -> str | None:
    """The short URL's host; None for Shlink's default domain (a blank domain cell)."""
    if "domain" in row.cells:
        return row.get("domain")
    if short_url := row.get("short_url"):
        return cells.short_link(short_url, column="the short URL")[0]
    return None


def open_source(opening: Opening) -> CsvSource:
    if opening.file is None:
        raise SourceError("A Shlink CSV import reads a file, and none was given.")
    settings = opening.settings
    default_domain = settings.default_domain if isinstance(settings, ShlinkCsvSettings) else None

    def check(header: Header) -> RowReader:
        if "short_code" not in header.fields and "short_url" not in header.fields:
            raise SourceError(
                "The file has no column for the short code: kurz looks for one named "
                f"shortCode or shortUrl. The header row names {header.shown()}."
            )
        return reader(default_domain)

    return CsvSource(opening.file, columns=COLUMNS, reader=check)


KIND = SourceKind(
    name="shlink-csv",
    title="Shlink (CSV export)",
    source="shlink",
    takes_file=True,
    open=open_source,
    settings=ShlinkCsvSettings,
    doc="docs/imports/shlink.md",
    notes=(
        "The short_urls.csv that shlink-web-client exports, or a CSV in the form "
        "Shlink's own import reads.",
        "Name your Shlink's default domain (default_domain) so that its short URLs go "
        "to the import's domain.",
        "Visits come over as a total, without days.",
    ),
)
