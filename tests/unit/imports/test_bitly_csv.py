"""Bitly's CSV export: each bitlink named as Bitly's API names it (bit.ly/3xYzAbc),
its back half kept, its domain when it is a branded one, its clicks as a total."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from kurz.imports.bitly_csv import COLUMNS
from kurz.imports.sources import Clicks, Record, SourceError, Unreadable
from tests.unit.imports.reading import items, pages, records, write

# As Bitly's Links page exports them (docs/imports/bitly.md says where the names come
# from), with a click count.
HEADER = "Title,Link,Custom link,Destination URL,Date created,Tags,Clicks"


async def test_a_bitlink_on_bitlys_domain_goes_to_the_imports_domain(tmp_path: Path) -> None:
    path = write(
        tmp_path / "bitly.csv",
        [
            HEADER,
            "Spring sale,https://bit.ly/3xYzAbc,,https://example.com/spring,2026-01-31 09:30:00,"
            '"spring, sale",1234',
        ],
    )
    assert await items("bitly-csv", path) == [
        Record(
            place="line 2",
            source_id="bit.ly/3xYzAbc",
            url="https://example.com/spring",
            alias="3xYzAbc",
            domain=None,
            title="Spring sale",
            tags=("spring", "sale"),
            created_at=datetime(2026, 1, 31, 9, 30, tzinfo=UTC),
        ),
        Clicks("bit.ly/3xYzAbc", total=1234),
    ]


@pytest.mark.parametrize("host", ["bit.ly", "j.mp", "bitly.is", "BIT.LY"])
async def test_each_of_bitlys_own_domains_is_the_imports_domain(tmp_path: Path, host: str) -> None:
    path = write(tmp_path / "bitly.csv", ["Link,Long URL", f"{host}/abc,https://example.com/"])
    [record] = await records("bitly-csv", path)
    assert (record.source_id, record.alias, record.domain) == (f"{host.lower()}/abc", "abc", None)


async def test_a_branded_domain_is_kept_with_the_custom_back_half_on_it(tmp_path: Path) -> None:
    path = write(
        tmp_path / "bitly.csv",
        [
            HEADER,
            ",https://es.pn/2yxklu,,https://example.com/a,,,0",
            ',https://es.pn/2abcde,"es.pn/first, https://es.pn/second",https://example.com/b,,,',
            # A custom link on another domain is not the link's own: its hash is kept.
            ",https://bit.ly/3abc,https://es.pn/promo,https://example.com/c,,,",
            ",https://bit.ly/3def,not a link; bit.ly/chosen,https://example.com/d,,,",
        ],
    )
    assert [(r.source_id, r.domain, r.alias) for r in await records("bitly-csv", path)] == [
        ("es.pn/2yxklu", "es.pn", "2yxklu"),
        ("es.pn/2abcde", "es.pn", "first"),
        ("bit.ly/3abc", None, "3abc"),
        ("bit.ly/3def", None, "chosen"),
    ]


@pytest.mark.parametrize(("field", "name"), [(c.field, n) for c in COLUMNS for n in c.names])
async def test_each_column_is_read_by_each_of_its_names(
    tmp_path: Path, field: str, name: str
) -> None:
    cells = {
        "link": "https://bit.ly/3xYz",
        "url": "https://example.com/",
        "custom": "https://bit.ly/sale",
        "title": "A title",
        "tags": "a; b",
        "created_at": "2026-01-31T09:30:00+0000",
        "clicks": "7",
    }
    others = {"link": "Link", "url": "Long URL"}
    others.pop(field, None)
    header = [name, *others.values()]
    row = [cells[field], *(cells[other] for other in others)]
    path = write(tmp_path / "bitly.csv", [",".join(header), ",".join(row)])
    read = await items("bitly-csv", path)
    record = read[0]
    assert isinstance(record, Record)
    assert record.source_id == "bit.ly/3xYz"
    assert read[1:] == ([Clicks("bit.ly/3xYz", total=7)] if field == "clicks" else [])
    seen = {
        "link": record.alias,
        "url": record.url,
        "custom": f"https://bit.ly/{record.alias}",
        "title": record.title,
        "tags": "; ".join(record.tags),
        "created_at": record.created_at and record.created_at.strftime("%Y-%m-%dT%H:%M:%S+0000"),
        "clicks": "7",
    }
    assert seen[field] == (cells[field] if field != "link" else "3xYz")


async def test_rows_it_cannot_read_are_unreadable_with_their_bitlink(tmp_path: Path) -> None:
    path = write(
        tmp_path / "bitly.csv",
        [
            HEADER,
            ",,,https://example.com/no-link,,,",
            ",https://bit.ly/nourl,,,,,",
            ",https://bit.ly/,,https://example.com/no-back-half,,,",
            ",https://bit.ly/when,,https://example.com/,yesterday,,",
            ",https://bit.ly/many,,https://example.com/,,,lots",
            ",https://bit.ly/fine,,https://example.com/,,,",
        ],
    )
    assert await items("bitly-csv", path) == [
        Unreadable("line 2", "it has no bitlink"),
        Unreadable("line 3", "it has no destination URL", source_id="bit.ly/nourl"),
        Unreadable(
            "line 4", "the bitlink 'https://bit.ly/' is not a short link (a host and a path)"
        ),
        Unreadable(
            "line 5",
            "Date created 'yesterday' is not a time kurz reads: ISO 8601 "
            "(2026-01-31, 2026-01-31T09:30:00Z) or unix seconds",
            source_id="bit.ly/when",
        ),
        Unreadable("line 6", "Clicks 'lots' is not a whole number", source_id="bit.ly/many"),
        Record("line 7", "bit.ly/fine", "https://example.com/", alias="fine"),
    ]


@pytest.mark.parametrize(
    ("header", "missing"),
    [("Title,Destination URL", "the bitlink"), ("Title,Link", "the destination URL")],
)
async def test_a_file_without_the_bitlink_or_the_destination_is_a_source_error(
    tmp_path: Path, header: str, missing: str
) -> None:
    path = write(tmp_path / "bitly.csv", [header, "a,b"])
    with pytest.raises(SourceError, match=f"^The file has no column for {missing}: "):
        await pages("bitly-csv", path)
