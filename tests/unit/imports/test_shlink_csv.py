"""Shlink's CSV export: each short URL named as Shlink's API names it (DEFAULT/abc,
go.example/abc), its short code kept, its visits as a total."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from kurz.imports.sources import Clicks, Record, SourceError, Unreadable
from tests.unit.imports.reading import items, pages, records, write

# shlink-web-client's "Export" (json2csv: every name and text quoted, line feeds).
WEB_CLIENT = '"createdAt","domain","shortCode","shortUrl","longUrl","title","tags","visits"'


def exported(domain: str, code: str, *, tags: str = "", visits: int = 0, title: str = "") -> str:
    return (
        f'"2023-03-19T10:00:00+01:00","{domain}","{code}","https://{domain}/{code}",'
        f'"https://example.com/{code}","{title}","{tags}",{visits}'
    )


async def test_the_web_clients_export_with_the_default_domain_named(tmp_path: Path) -> None:
    path = write(
        tmp_path / "short_urls.csv",
        [
            WEB_CLIENT,
            exported("s.example", "abc123", tags="foo|bar, baz", visits=42, title='Say ""hi""'),
            exported("go.example", "promo"),
        ],
        end="\n",
    )
    assert await items("shlink-csv", path, default_domain="S.Example") == [
        Record(
            place="line 2",
            source_id="DEFAULT/abc123",
            url="https://example.com/abc123",
            alias="abc123",
            domain=None,
            title='Say "hi"',
            tags=("foo", "bar, baz"),
            created_at=datetime(2023, 3, 19, 9, tzinfo=UTC),
        ),
        Clicks("DEFAULT/abc123", total=42),
        Record(
            place="line 3",
            source_id="go.example/promo",
            url="https://example.com/promo",
            alias="promo",
            domain="go.example",
            created_at=datetime(2023, 3, 19, 9, tzinfo=UTC),
        ),
    ]


async def test_without_the_default_domain_every_short_url_keeps_its_host(tmp_path: Path) -> None:
    path = write(tmp_path / "short_urls.csv", [WEB_CLIENT, exported("s.example", "abc")])
    [record] = await records("shlink-csv", path)
    assert (record.source_id, record.domain) == ("s.example/abc", "s.example")


async def test_the_csv_shlinks_own_import_reads(tmp_path: Path) -> None:
    path = write(
        tmp_path / "links.csv",
        [
            "Long URL,Tags,Domain,Short code,Title",
            "https://shlink.io,foo|bar|baz,,123,",
            'https://example.com,"a,b",example.com,456,my title',
        ],
    )
    assert await records("shlink-csv", path) == [
        Record(
            "line 2", "DEFAULT/123", "https://shlink.io", alias="123", tags=("foo", "bar", "baz")
        ),
        Record(
            "line 3",
            "example.com/456",
            "https://example.com",
            alias="456",
            domain="example.com",
            title="my title",
            tags=("a", "b"),
        ),
    ]


async def test_without_short_code_or_domain_columns_both_come_from_the_short_url(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path / "links.csv",
        ["shortUrl,longUrl", "https://s.example/abc,https://example.com/", "https://x/,https://y/"],
    )
    assert await items("shlink-csv", path, default_domain="s.example") == [
        Record("line 2", "DEFAULT/abc", "https://example.com/", alias="abc"),
        Unreadable("line 3", "the short URL 'https://x/' is not a short link (a host and a path)"),
    ]


async def test_rows_it_cannot_read_are_unreadable_and_the_rest_goes_on(tmp_path: Path) -> None:
    path = write(
        tmp_path / "short_urls.csv",
        [
            WEB_CLIENT,
            '"2023-03-19T10:00:00Z","","","","https://example.com/a","","",0',
            '"2023-03-19T10:00:00Z","","nourl","","","","",0',
            '"19/03/2023","","when","","https://example.com/","","",0',
            '"","","many","","https://example.com/","","",-1',
            '"","","fine","","https://example.com/","","",',
        ],
    )
    assert await items("shlink-csv", path) == [
        Unreadable("line 2", "it has no short code"),
        Unreadable("line 3", "it has no long URL", source_id="DEFAULT/nourl"),
        Unreadable(
            "line 4",
            "createdAt '19/03/2023' is not a time kurz reads: ISO 8601 "
            "(2026-01-31, 2026-01-31T09:30:00Z) or unix seconds",
            source_id="DEFAULT/when",
        ),
        Unreadable("line 5", "visits '-1' is not a whole number", source_id="DEFAULT/many"),
        Record("line 6", "DEFAULT/fine", "https://example.com/", alias="fine"),
    ]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            "shortCode,title",
            "The file has no column for the long URL: kurz looks for one named longUrl. "
            "The header row names 'shortCode', 'title'.",
        ),
        (
            "longUrl,title",
            "The file has no column for the short code: kurz looks for one named shortCode or "
            "shortUrl. The header row names 'longUrl', 'title'.",
        ),
    ],
)
async def test_a_file_without_long_urls_or_short_codes_is_a_source_error(
    tmp_path: Path, header: str, message: str
) -> None:
    path = write(tmp_path / "links.csv", [header, "a,b"])
    with pytest.raises(SourceError) as raised:
        await pages("shlink-csv", path)
    assert str(raised.value) == message
