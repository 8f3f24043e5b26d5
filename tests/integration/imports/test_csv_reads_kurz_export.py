"""kurz's own CSV export reads back as the links it holds (docs/export.md, "CSV";
docs/imports/csv.md)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import httpx

from kurz.imports.sources import Clicks, Record
from tests.integration.links.support import create
from tests.unit.imports.reading import items


async def test_a_csv_export_reads_back_as_its_links(api: httpx.AsyncClient, tmp_path: Path) -> None:
    made = [
        await create(
            api,
            url="https://example.com/spring?a=1,b=2",
            alias="spring",
            og_title='=1+2, "quoted"\nand a second line',
            tags=["=cmd", "a,b", "line; semi", "x|y", "launch"],
            valid_from="2026-01-01T00:00:00Z",
            expires_at="2027-06-30T12:30:00.250000Z",
        ),
        await create(api, url="https://example.com/plain"),
    ]
    response = await api.get("/api/v1/export", params={"format": "csv"})
    assert response.status_code == 200, response.text
    path = tmp_path / "export.csv"
    path.write_bytes(response.content)

    read = await items("csv", path)
    assert read == [
        Record(
            place=place,
            source_id=f"{link['domain']}/{link['code']}",
            url=link["url"],
            alias=link["code"],
            domain=link["domain"],
            title=link["og_title"],
            tags=tuple(sorted(link["tags"])),  # as the export has them
            created_at=datetime.fromisoformat(link["created_at"]),
            starts_at=link["valid_from"] and datetime.fromisoformat(link["valid_from"]),
            expires_at=link["expires_at"] and datetime.fromisoformat(link["expires_at"]),
        )
        # The first link's title and tags hold line breaks: its record takes six lines.
        for place, link in zip(["line 2", "line 8"], made, strict=True)
    ]
    assert not any(isinstance(item, Clicks) for item in read)  # no clicks yet
