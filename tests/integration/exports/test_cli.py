"""`kurz export`, as an operator runs it on the server: every link from the database, to
a file that appears whole or to standard output; a mistake is one line and exit 1."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from typer.testing import CliRunner, Result

from kurz.cli import app
from kurz.db import Database
from tests.integration.analytics.rollups import Rollups, new_link
from tests.integration.auth import support as people
from tests.integration.exports.support import by_code, parsed, statistics, stored
from tests.support import FakeClock

T = TypeVar("T")


def on(database_url: str, work: Callable[[Database], Awaitable[T]]) -> T:
    async def run() -> T:
        db = Database.from_url(database_url)
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(run())


@pytest.fixture
def kurz(database_url: str) -> Callable[..., Result]:
    runner = CliRunner()

    def run(*args: str, url: str = database_url) -> Result:
        env = {"KURZ_DATABASE_URL": url, "KURZ_BASE_URL": "https://s.example", "COLUMNS": "250"}
        return runner.invoke(app, ["export", *args], env=env)

    return run


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """A folder of the test's own (the SQLite database is in tmp_path)."""
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def seeded(database_url: str) -> dict[int, str]:
    """Alice's two links (one deleted) and Bob's one, with statistics; codes by id."""

    async def work(db: Database) -> dict[int, str]:
        clock = FakeClock()
        alice = await people.new_user(db, clock, "alice@example.com")
        bob = await people.new_user(db, clock, "bob@example.com")
        codes = {
            await new_link(db, clock, alice, "alice-1", title="One, two"): "alice-1",
            await new_link(db, clock, alice, "alice-gone", deleted=True): "alice-gone",
            await new_link(db, clock, bob, "bob-1"): "bob-1",
        }
        rollups = Rollups()
        for link_id in codes:
            rollups.day(link_id, "2025-12-30", clicks=4, uniques=3, bots=1)
            rollups.hour(link_id, "2025-12-30 10:00", clicks=4, uniques=3, bots=1)
            rollups.value(link_id, "2025-12-30", "country", "DE", 4)
        await rollups.write(db)
        return codes

    return on(database_url, work)


def one_line(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_every_link_goes_to_a_file_whole_or_to_standard_output(
    database_url: str, kurz: Callable[..., Result], out: Path
) -> None:
    codes = seeded(database_url)
    target = out / "kurz.jsonl"
    written = kurz("--output", str(target))
    assert written.exit_code == 0, written.stderr
    assert written.stdout == ""
    assert one_line(written) == (
        f"exported 3 links (1 deleted) and 9 rows of statistics to {target}"
    )
    assert [path.name for path in out.iterdir()] == ["kurz.jsonl"]
    lines = parsed(target.read_bytes())
    assert (lines[0]["links"], lines[0]["base_url"]) == ("all", "https://s.example")
    assert set(by_code(lines)) == set(codes.values())
    assert by_code(lines)["alice-gone"]["deleted_at"] is not None
    assert by_code(lines)["bob-1"]["short_url"] == "https://s.example/bob-1"
    assert statistics(lines) == on(database_url, lambda db: stored(db, codes))

    printed = kurz()
    assert printed.exit_code == 0, printed.stderr
    assert one_line(printed).endswith("to standard output")
    again = parsed(printed.stdout_bytes)
    # The same file, but for when it was made.
    assert again[1:] == lines[1:]
    assert {**again[0], "exported_at": None} == {**lines[0], "exported_at": None}


def test_one_users_live_links_and_csv(
    database_url: str, kurz: Callable[..., Result], out: Path
) -> None:
    seeded(database_url)
    hers = kurz("--user", "Alice@Example.com")
    assert hers.exit_code == 0, hers.stderr
    lines = parsed(hers.stdout_bytes)
    assert (lines[0]["links"], lines[0]["user"]) == ("user", "alice@example.com")
    assert set(by_code(lines)) == {"alice-1"}
    assert {line["code"] for line in lines[1:-1]} == {"alice-1"}

    table = out / "links.csv"
    written = kurz("--format", "csv", "-o", str(table))
    assert written.exit_code == 0, written.stderr
    rows = list(csv.DictReader(io.StringIO(table.read_text(), newline="")))
    assert [(row["code"], row["title"], row["clicks"]) for row in rows] == [
        ("alice-1", "One, two", "4"),
        ("bob-1", "", "4"),
    ]


def test_a_mistake_is_one_line_and_exit_code_1_and_leaves_no_file(
    database_url: str, kurz: Callable[..., Result], out: Path
) -> None:
    seeded(database_url)
    target = out / "out.jsonl"
    for args, says in [
        (["--format", "xml"], "error: --format: 'xml' is not one of jsonl, csv"),
        (["--user", "nobody@example.com", "-o", str(target)],
         "error: No user has the email nobody@example.com."),
        (["--output", str(out / "no" / "such.jsonl")],
         f"error: --output: {out / 'no'} is not a directory"),
        (["--output", str(out)], f"error: --output: {out} is a directory"),
    ]:  # fmt: skip
        result = kurz(*args)
        assert result.exit_code == 1, (args, result.stdout)
        assert one_line(result) == says
        assert result.stdout == ""
    away = kurz("-o", str(target), url="postgresql://kurz@127.0.0.1:1/kurz")
    assert away.exit_code == 1
    assert one_line(away) == (
        "error: cannot connect to PostgreSQL on 127.0.0.1:1: connection refused "
        "(is it running? check KURZ_DATABASE_URL)"
    )
    assert list(out.iterdir()) == []


def test_a_pipe_is_written_to_as_it_is_and_a_write_that_fails_is_one_line(
    database_url: str, kurz: Callable[..., Result], out: Path
) -> None:
    codes = seeded(database_url)

    async def busy(db: Database) -> None:
        # Over 64 KiB of export, more than a pipe holds unread.
        rollups = Rollups()
        first = datetime(2025, 9, 1, tzinfo=UTC)
        for hour in range(2_000):
            moment = (first + timedelta(hours=hour)).strftime("%Y-%m-%d %H:%M")
            rollups.hour(next(iter(codes)), moment, 1, 1)
        await rollups.write(db)

    on(database_url, busy)
    fifo = out / "pipe"
    os.mkfifo(fifo)
    read: list[bytes] = []

    def reader(keep: bool) -> None:
        with fifo.open("rb") as pipe:
            if keep:
                read.append(pipe.read())

    for keep in (True, False):
        thread = threading.Thread(target=reader, args=(keep,))
        thread.start()
        result = kurz("--output", str(fifo))
        thread.join()
        assert fifo.is_fifo()
        if keep:
            assert result.exit_code == 0, result.stderr
            assert len(by_code(parsed(read[0]))) == 3
        else:
            assert result.exit_code == 1
            assert one_line(result) == f"error: cannot write the export to {fifo}: Broken pipe"
