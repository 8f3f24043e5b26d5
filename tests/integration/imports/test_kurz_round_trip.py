"""Export, then import into an empty kurz: a copy. Every link as the API shows it, with
its tags, rules, variants, password hash, visits and deletion, and every row of its
statistics, on SQLite and PostgreSQL; importing the same export again makes nothing
new and counts no click twice."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from kurz.bootstrap import Parts
from kurz.db import Database
from kurz.imports.models import ImportRead
from kurz.imports.service import Imports
from tests.conftest import _pg_database, app_settings
from tests.integration.auth import support as people
from tests.integration.auth.people import client
from tests.integration.imports.kurz_seed import (
    OTHER,
    export_to,
    owner_days,
    seed,
    stored_links,
    stored_statistics,
    totals,
)
from tests.integration.imports.support import user
from tests.support import FakeClock, running

# What a copy cannot keep: ids of the kurz exported from (its own, its users' and
# keys'), the owner (the importing user), and the version and last change (the import
# is the link's making here).
NOT_KEPT = {"id", "owner", "created_by", "updated_by", "version", "updated_at"}


@pytest.fixture
def empty_url(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> Iterator[str]:
    """A second kurz's database, migrated and empty, on the same backend."""
    if database_url.startswith("sqlite"):
        path = tmp_path / "empty.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
    else:
        yield from _pg_database(request.getfixturevalue("pg_template"), migrated=True)


async def chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as file:
        while chunk := file.read(64 * 1024):
            yield chunk


def link_lines(path: Path) -> dict[str, dict[str, Any]]:
    """The export's link lines by source id."""
    lines = [json.loads(line) for line in path.read_bytes().splitlines()]
    return {f"{line['domain']}/{line['code']}": line for line in lines if line["type"] == "link"}


async def import_file(imports: Imports, principal: Any, path: Path) -> ImportRead:
    started = await imports.start(
        principal=principal,
        kind="kurz",
        settings={},
        file=chunks(path),
        filename=path.name,
        enqueue=False,
    )
    return await imports.run(started.id)


async def test_an_export_imported_into_an_empty_kurz_is_a_copy(
    app: FastAPI, db: Database, clock: FakeClock, tmp_path: Path, empty_url: str
) -> None:
    await seed(app, db, clock)
    exported = await export_to(db, clock, tmp_path / "kurz.jsonl")
    before = link_lines(exported)
    statistics = await stored_statistics(db)
    clicks = sum(
        day.clicks + day.bot_clicks for stats in statistics.values() for day in stats.daily
    )

    async with running(app_settings(empty_url), clock) as second:
        parts = second.state.kurz
        assert isinstance(parts, Parts)
        root = await people.admin(parts.db, clock, "root@example.com")
        async with client(second, root.secret) as api:
            made = await api.post("/api/v1/domains", json={"host": OTHER})
            assert made.status_code == 201, made.text
        me = await user(parts.db, clock, "new@example.com")

        done = await import_file(parts.imports, me, exported)
        assert done.error is None
        assert (done.status, done.total, done.read) == ("finished", 8, 8)
        assert (done.imported, done.skipped, done.failed, done.clicks) == (8, 0, 0, clicks)

        copied = await export_to(parts.db, clock, tmp_path / "copy.jsonl")
        after = link_lines(copied)
        assert set(after) == set(before)
        for source_id, line in before.items():
            kept = {name: value for name, value in line.items() if name not in NOT_KEPT}
            assert {name: after[source_id][name] for name in kept} == kept, source_id
        assert all(line["owner"] == "new@example.com" for line in after.values())
        # A code kurz drew stays drawn (not an alias) in the copy.
        assert sorted(line["alias"] for line in after.values()) == [False] + [True] * 7

        assert await stored_statistics(parts.db) == statistics
        assert len(await totals(db)) == 4
        assert await totals(parts.db) == await totals(db)
        # Every link is the importer's: their days hold the sums of Alice's and Bob's.
        everyone: dict[tuple[str, date], tuple[int, int, int]] = {}
        for (_, day), (clicks_, bots, uniques) in (await owner_days(db)).items():
            was = everyone.get(("new@example.com", day), (0, 0, 0))
            everyone["new@example.com", day] = (was[0] + clicks_, was[1] + bots, was[2] + uniques)
        assert {email for email, _ in await owner_days(db)} == {
            "alice@example.com",
            "bob@example.com",
        }
        assert await owner_days(parts.db) == everyone
        kept_links = await stored_links(parts.db)

        again = await import_file(parts.imports, me, exported)
        assert (again.status, again.read, again.imported, again.skipped, again.failed) == (
            "finished", 8, 0, 8, 0,
        )  # fmt: skip
        assert again.clicks == 0
        assert await stored_links(parts.db) == kept_links
        assert await stored_statistics(parts.db) == statistics
        assert await totals(parts.db) == await totals(db)
        assert await owner_days(parts.db) == everyone
