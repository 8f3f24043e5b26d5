"""The file sources through the import itself, on SQLite and PostgreSQL: a CSV file,
Bitly's and Shlink's CSV exports become links with their clicks; a file it cannot read
fails the import saying why."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from kurz.auth.models import Principal
from kurz.bootstrap import Parts
from kurz.db.tables import link_clicks_total, link_sources, links
from kurz.imports.models import ImportRead
from kurz.imports.service import Imports
from tests.integration.imports.support import user


@pytest.fixture
def imports(app: FastAPI) -> Imports:
    parts = app.state.kurz
    assert isinstance(parts, Parts)
    return parts.imports


@pytest.fixture
async def alice(imports: Imports) -> Principal:
    return await user(imports.db, imports.clock, "alice@example.com")


async def chunks(content: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(content), 4096):
        yield content[start : start + 4096]


async def run(
    imports: Imports, alice: Principal, kind: str, content: bytes, **settings: Any
) -> ImportRead:
    started = await imports.start(
        principal=alice,
        kind=kind,
        settings=settings,
        file=chunks(content),
        filename="links.csv",
        enqueue=False,
    )
    return await imports.run(started.id)


async def stored(imports: Imports) -> list[tuple[Any, ...]]:
    async with imports.db.read() as conn:
        found = await conn.execute(
            sa.select(
                link_sources.c.source,
                link_sources.c.source_id,
                links.c.code,
                links.c.url,
                sa.func.coalesce(link_clicks_total.c.clicks, 0),
            )
            .join(links, links.c.id == link_sources.c.link_id)
            .outerjoin(link_clicks_total, link_clicks_total.c.link_id == links.c.id)
            .order_by(links.c.id)
        )
        return [tuple(row) for row in found]


async def test_a_csv_file_of_1200_rows_with_bad_ones_and_again(
    imports: Imports, alice: Principal
) -> None:
    lines = ["url;alias;tags;expires;clicks"]
    for n in range(1, 1_201):
        expires = "never" if n % 100 == 0 else "2030-01-01"
        lines.append(f"https://example.com/{n};link-{n};a,b;{expires};{n % 3}")
    lines.append("https://example.com/1;;;;")  # no alias: its URL is its id
    content = ("\ufeff" + "\r\n".join(lines) + "\r\n").encode()

    done = await run(imports, alice, "csv", content)
    assert (done.status, done.total, done.read) == ("finished", 1_201, 1_201)
    assert (done.imported, done.skipped, done.failed) == (1_189, 0, 12)
    assert done.clicks == sum(n % 3 for n in range(1, 1_201) if n % 100)
    made = await stored(imports)
    assert made[0] == ("csv", "link-1", "link-1", "https://example.com/1", 1)
    assert made[-1][:2] == ("csv", "https://example.com/1")
    report = await imports.report(done.id, principal=alice, limit=200)
    failed = [(row.n, row.reason) for row in report.rows if row.outcome == "failed"]
    assert failed[0] == (
        100,
        "expires 'never' is not a time kurz reads: ISO 8601 (2026-01-31, "
        "2026-01-31T09:30:00Z) or unix seconds",
    )

    again = await run(imports, alice, "csv", content)
    assert (again.imported, again.skipped, again.failed, again.clicks) == (0, 1_189, 12, 0)


async def test_bitlys_export_keeps_back_halves_and_clicks(
    imports: Imports, alice: Principal
) -> None:
    content = (
        b"Title,Link,Custom link,Destination URL,Date created,Tags,Clicks\n"
        b"Sale,https://bit.ly/3xYzAbc,,https://example.com/sale,2024-05-01T10:00:00+0000,a,12\n"
        b"Other,https://bit.ly/3other,,https://example.com/other,,,0\n"
        b"Branded,https://es.pn/promo,,https://example.com/espn,,,4\n"
    )
    done = await run(imports, alice, "bitly-csv", content)
    assert (done.imported, done.failed, done.clicks) == (2, 1, 12)
    assert await stored(imports) == [
        ("bitly", "bit.ly/3xYzAbc", "3xYzAbc", "https://example.com/sale", 12),
        ("bitly", "bit.ly/3other", "3other", "https://example.com/other", 0),
    ]
    report = await imports.report(done.id, principal=alice)
    assert report.rows[2].reason == (
        "the domain 'es.pn' is not one of this kurz's: add it (kurz domain add), or import "
        "with another domain"
    )


async def test_shlinks_export_names_links_as_its_api_does(
    imports: Imports, alice: Principal
) -> None:
    content = (
        b'"createdAt","domain","shortCode","shortUrl","longUrl","title","tags","visits"\n'
        b'"2023-03-19T10:00:00+00:00","s.example","abc123","https://s.example/abc123",'
        b'"https://example.com/a","A","foo|bar",42\n'
    )
    done = await run(imports, alice, "shlink-csv", content, default_domain="s.example")
    assert (done.imported, done.failed, done.clicks) == (1, 0, 42)
    assert await stored(imports) == [
        ("shlink", "DEFAULT/abc123", "abc123", "https://example.com/a", 42)
    ]


async def test_a_file_that_is_not_utf_8_fails_the_import_saying_where(
    imports: Imports, alice: Principal
) -> None:
    done = await run(
        imports, alice, "csv", "url,title\nhttps://example.com/,café\n".encode("latin-1")
    )
    assert done.status == "failed"
    assert done.error is not None
    assert done.error.startswith("The file is not UTF-8 text: line 2 has byte 0xE9")
    assert await stored(imports) == []
