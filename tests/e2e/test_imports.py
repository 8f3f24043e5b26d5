"""An import end to end: `kurz serve` takes the upload, a `kurz worker` runs it and is
SIGKILLed in the middle, another worker goes on where it stopped. No link is lost and
none is made twice; the report has each row once, in order."""

from __future__ import annotations

import asyncio
import csv
import time
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from kurz.db import Database
from kurz.db.tables import import_rows, link_sources, links
from tests.e2e.support import PATIENCE, Server, kurz_env, new_key
from tests.e2e.test_webhooks import Worker

# Enough pages (500 rows each) that the first worker is killed with most still to do.
ROWS = 30_000


def write_file(path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["url", "alias", "tags"])
        for n in range(ROWS):
            writer.writerow([f"https://example.com/{n}", f"row-{n}" if n % 3 else "", "e2e"])


async def progress(api: httpx.AsyncClient, import_id: int, *, until: Any) -> dict[str, Any]:
    """The import once `until(import)` holds (a bounded poll of the API: the test has no
    other way to see a worker's pages); a hang fails after PATIENCE seconds."""
    deadline = time.monotonic() + PATIENCE
    while True:
        found: dict[str, Any] = (await api.get(f"/api/v1/imports/{import_id}")).json()
        if until(found):
            return found
        assert time.monotonic() < deadline, found
        await asyncio.sleep(0.05)


async def test_a_worker_killed_mid_import_loses_no_link_and_makes_none_twice(
    tmp_path: Path, database_url: str
) -> None:
    env = kurz_env(
        KURZ_DATABASE_URL=database_url,
        KURZ_RATELIMIT_API="off",
        KURZ_ANALYTICS="false",
        KURZ_EMBEDDED_WORKER="false",
        # A killed worker's job runs elsewhere this soon.
        KURZ_WORKER_LEASE="2",
    )
    data = tmp_path / "links.csv"
    write_file(data)
    server = Server(tmp_path, env)
    workers: list[Worker] = []
    try:
        await asyncio.to_thread(server.wait_ready)
        secret = await asyncio.to_thread(new_key, server.env, tmp_path, "ops", admin=True)
        async with httpx.AsyncClient(
            base_url=server.url, headers={"Authorization": f"Bearer {secret}"}, timeout=60
        ) as api:
            with data.open("rb") as upload:
                started = await api.post(
                    "/api/v1/imports",
                    data={"source": "csv"},
                    files={"file": ("links.csv", upload, "text/csv")},
                )
            assert started.status_code == 202, started.text
            import_id = started.json()["id"]

            workers.append(doomed := Worker(tmp_path, server.env, "doomed"))
            stopped = await progress(api, import_id, until=lambda found: found["read"] > 0)
            doomed.kill()
            # Killed with pages still to do (the first worker cannot have read them all
            # between two polls: 60 pages of 500 rows).
            killed_at = (await api.get(f"/api/v1/imports/{import_id}")).json()
            assert killed_at["status"] == "running", killed_at
            assert stopped["read"] <= killed_at["read"] < ROWS

            workers.append(Worker(tmp_path, server.env, "rescuer"))
            done = await progress(
                api, import_id, until=lambda found: found["status"] in ("finished", "failed")
            )
        assert (done["status"], done["read"], done["imported"]) == ("finished", ROWS, ROWS)
        assert (done["skipped"], done["failed"]) == (0, 0)
        db = Database.from_url(database_url)
        try:
            async with db.read() as conn:
                made = await conn.execute(sa.select(sa.func.count()).select_from(links))
                sources = await conn.execute(
                    sa.select(sa.func.count(), sa.func.count(sa.distinct(link_sources.c.source_id)))
                )
                numbers = await conn.execute(
                    sa.select(
                        sa.func.count(), sa.func.min(import_rows.c.n), sa.func.max(import_rows.c.n)
                    )
                )
                assert made.scalar_one() == ROWS
                assert tuple(sources.one()) == (ROWS, ROWS)
                assert tuple(numbers.one()) == (ROWS, 1, ROWS)
        finally:
            await db.dispose()
    finally:
        for worker in workers:
            worker.stop()
        server.stop()
