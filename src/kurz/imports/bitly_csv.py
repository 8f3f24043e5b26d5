"""Links from Bitly's CSV export of links (docs/imports/bitly.md, "From its CSV
export"): named as Bitly's API names them, so that the CSV and the API import the
same link once."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence

from kurz.imports import cells
from kurz.imports.sources import Clicks, Item, NoSettings, Opening, Record, SourceError, SourceKind
from kurz.imports.tabular import Column, CsvSource, Header, Row, RowReader

# Bitly's own short domains: a link on one of them goes to the import's domain.
BITLY_DOMAINS = frozenset({"bit.ly", "j.mp", "bitly.is"})

# The export's columns as Bitly's pages name them ("Link", "Custom link", "Destination
# URL", ...; docs/imports/bitly.md says where that comes from), and the API's field
# names, which some tools write into their CSV files.
COLUMNS = (
    Column(
        "link",
        ("Link", "Bitlink", "Short link", "Short URL", "Bitlink ID", "id"),
        label="the bitlink",
        required=True,
    ),
    Column(
        "url",
        ("Destination URL", "Long URL", "Destination", "Original URL", "long_url"),
        label="the destination URL",
        required=True,
    ),
    Column("custom", ("Custom link", "Custom bitlink", "custom_bitlinks", "Custom links")),
    Column("title", ("Title",)),
    Column("tags", ("Tags",)),
    Column("created_at", ("Date created", "Created", "created_at", "Creation date")),
    Column("clicks", ("Clicks", "Total clicks", "Engagements", "Total engagements")),
)


def reader(header: Header) -> RowReader:
    return read


def read(row: Row) -> Sequence[Item]:
    link = row.get("link")
    if link is None:
        raise cells.CellError("it has no bitlink")
    host, back_half = cells.short_link(link, column="the bitlink")
    source_id = f"{host}/{back_half}"
    url = row.get("url")
    if url is None:
        raise cells.CellError("it has no destination URL", source_id=source_id)
    try:
        tags = row.get("tags")
        record = Record(
            place=row.place,
            source_id=source_id,
            url=url,
            alias=_custom(row.get("custom"), host) or back_half,
            domain=None if host in BITLY_DOMAINS else host,
            title=row.get("title"),
            tags=cells.tags(tags) if tags else (),
            created_at=row.when("created_at"),
        )
        clicks = row.count("clicks")
    except cells.CellError as error:
        raise cells.CellError(error.reason, source_id=source_id) from None
    return [record, Clicks(source_id, total=clicks)] if clicks else [record]


def _custom(links: str | None, host: str) -> str | None:
    """The first custom back half the link has on its own domain (what people were
    given), as the API import (kurz.imports.bitly_api) takes it."""
    for link in re.split(r"[,;\s]+", links or ""):
        if link:
            with contextlib.suppress(cells.CellError):
                domain, back_half = cells.short_link(link, column="the custom link")
                if domain == host:
                    return back_half
    return None


def open_source(opening: Opening) -> CsvSource:
    if opening.file is None:
        raise SourceError("A Bitly CSV import reads a file, and none was given.")
    return CsvSource(opening.file, columns=COLUMNS, reader=reader)


KIND = SourceKind(
    name="bitly-csv",
    title="Bitly (CSV export)",
    source="bitly",
    takes_file=True,
    open=open_source,
    settings=NoSettings,
    doc="docs/imports/bitly.md",
    notes=(
        "The CSV file Bitly's Links page exports.",
        "Each link keeps its back half (its custom one on its own domain, if any); links "
        "on bit.ly, j.mp and bitly.is go to the import's domain, links on a branded "
        "domain to that domain.",
        "Clicks come over as a total, without days.",
    ),
)
