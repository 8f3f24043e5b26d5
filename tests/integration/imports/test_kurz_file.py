"""The kurz source reads what the real exporter writes: every link as the database holds
it, tombstones and passwords included, and every row of its statistics, each link in
the page of its statistics; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import FastAPI

from kurz.db import Database
from kurz.imports.kurz_file import KurzFile
from kurz.imports.sources import Clicks, Page, Record
from tests.integration.imports.kurz_seed import (
    HOST,
    OTHER,
    expected_record,
    export_to,
    merged,
    seed,
    stored_links,
    stored_statistics,
)
from tests.support import FakeClock


async def read(source: KurzFile, after: str | None = None) -> list[Page]:
    return [page async for page in source.pages(after)]


async def test_an_export_reads_back_as_the_database_holds_it(
    app: FastAPI, db: Database, clock: FakeClock, tmp_path: Path
) -> None:
    seeded = await seed(app, db, clock)
    stored = await stored_links(db)
    statistics = await stored_statistics(db)
    assert len(stored) == len(seeded.shown) == 8
    assert {source_id for source_id, row in stored.items() if row["deleted_at"]} == {
        f"{HOST}/gone",
        f"{OTHER}/gone-too",
    }
    assert set(statistics) == {f"{OTHER}/spring", f"{HOST}/gone", f"{HOST}/bobs", f"{HOST}/random"}

    # As the exporter writes it, and in pages of 2 links and chunks of 3 rows: every
    # link's statistics spread over several lines, after the links of its page.
    for name, sizes in [("whole", {}), ("small", {"page_size": 2, "chunk_rows": 3})]:
        path = await export_to(db, clock, tmp_path / f"{name}.jsonl", **sizes)
        lines = [json.loads(line) for line in path.read_bytes().splitlines()]
        source = KurzFile(path)
        assert await source.total() == 8
        pages = await read(source)
        items = [item for page in pages for item in page.items]
        records = {item.source_id: item for item in items if isinstance(item, Record)}
        assert [type(item) for item in items if not isinstance(item, Record | Clicks)] == []
        assert len(records) == 8
        for source_id, record in records.items():
            line = lines[int(record.place.removeprefix("line ")) - 1]
            assert (line["type"], f"{line['domain']}/{line['code']}") == ("link", source_id)
            assert record == expected_record(
                seeded.shown[source_id], stored[source_id], record.place
            )
        assert merged([item for item in items if isinstance(item, Clicks)]) == statistics
        for page in pages:
            given = {item.source_id for item in page.items if isinstance(item, Record)}
            assert {item.source_id for item in page.items if isinstance(item, Clicks)} <= given

        # Resuming after any page gives what followed it.
        for n, page in enumerate(pages):
            assert await read(KurzFile(path), page.position) == pages[n + 1 :]
    # A page is a run of links and the statistics after them: capped's and secret's
    # (none) do not part them from the next two.
    assert [sum(isinstance(item, Record) for item in page.items) for page in pages] == [2, 4, 2]
