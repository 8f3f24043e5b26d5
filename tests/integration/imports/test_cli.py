"""`kurz import`, as an operator runs it on the server, on SQLite and PostgreSQL: each
command gives its source what was asked (a file, a token, a database URL, from options
or the environment, private addresses allowed), runs the import here and reports, or
queues it (--detach) for a worker; `status` shows an import's report, failures first;
`resume` queues one a killed `kurz import` left running. Bad input is one line and
exit 2, an import that fails as a whole exit 1, never a traceback."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from kurz import bootstrap, cli_imports
from kurz.bootstrap import Parts, build, running
from kurz.cli import app
from kurz.config import Settings
from kurz.db import Database
from kurz.db.tables import imports, jobs, links
from kurz.imports.service import JOB
from kurz.jobs import Worker
from tests.integration.auth import support as people
from tests.integration.imports.front import CSV, GOOD, Opened, kinds
from tests.support import FakeClock

T = TypeVar("T")
Kurz = Callable[..., Result]


def on(database_url: str, work: Callable[[Database], Awaitable[T]]) -> T:
    async def run() -> T:
        db = Database.from_url(database_url)
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(run())


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> Opened:
    """`kurz import`'s parts read the stand-in sources."""
    seen = Opened()

    def built(settings: Settings, **more: Any) -> Parts:
        parts = build(settings, **more)
        parts.imports.kinds = kinds(seen)
        return parts

    # kurz.cli_imports imports build when a command runs (so that --help loads none of it).
    monkeypatch.setattr(bootstrap, "build", built)
    return seen


@pytest.fixture
def kurz(database_url: str, opened: Opened) -> Kurz:
    runner = CliRunner()

    def run(*args: str, **env: str) -> Result:
        given = {
            "KURZ_DATABASE_URL": database_url,
            "KURZ_BASE_URL": "https://s.example",
            "COLUMNS": "250",
            **env,
        }
        return runner.invoke(app, ["import", *args], env=given)

    return run


@pytest.fixture
def admin(database_url: str) -> int:
    return on(
        database_url, lambda db: people.new_user(db, FakeClock(), "root@example.com", "admin")
    )


@pytest.fixture
def links_file(tmp_path: Path) -> Path:
    path = tmp_path / "links.csv"
    path.write_bytes(CSV)
    return path


def one_line(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def table_rows(printed: str) -> list[list[str]]:
    """The rows of the tables printed: each cell, stripped."""
    return [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in printed.splitlines()
        if line.startswith("│")
    ]


def stored(database_url: str) -> list[tuple[Any, ...]]:
    async def work(db: Database) -> list[tuple[Any, ...]]:
        async with db.read() as conn:
            found = await conn.execute(
                sa.select(links.c.user_id, links.c.code, links.c.url).order_by(links.c.id)
            )
            return [tuple(row) for row in found]

    return on(database_url, work)


def import_rows(database_url: str) -> list[tuple[Any, ...]]:
    async def work(db: Database) -> list[tuple[Any, ...]]:
        async with db.read() as conn:
            found = await conn.execute(
                sa.select(imports.c.id, imports.c.user_id, imports.c.status, imports.c.job_id)
            )
            return [tuple(row) for row in found]

    return on(database_url, work)


def test_a_file_is_imported_here_and_reported(
    kurz: Kurz, admin: int, links_file: Path, opened: Opened, database_url: str
) -> None:
    done = kurz("csv", str(links_file), "--on-conflict", "rename")
    assert done.exit_code == 0, done.output
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert lines[0] == (
        "import 1 (csv, links.csv): finished; read 4 of 4: imported 3, skipped 0, failed 1; "
        "0 clicks"
    )
    assert lines[1].rstrip() == "failed"
    assert table_rows(done.stdout) == [["3", "line 3", "failed", "", "not a URL"]]
    assert lines[-1] == "The whole report: kurz import status 1"
    assert opened.seen == [("csv", {}, CSV, True)]
    assert stored(database_url) == [
        (admin, "one", "https://example.com/one"),
        (admin, stored(database_url)[1][1], "https://example.com/two"),
        (admin, "three", "https://example.com/three"),
    ]
    assert import_rows(database_url) == [(1, admin, "finished", None)]

    again = kurz("kurz", str(links_file))
    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines()[0].startswith("import 2 (kurz, links.csv): finished;")


def test_each_command_gives_its_source_what_was_asked(
    kurz: Kurz, admin: int, links_file: Path, opened: Opened
) -> None:
    runs = [
        ("bitly", str(links_file)),
        (
            "bitly",
            "--token",
            GOOD,
            "--api-url",
            "http://127.0.0.1:9/v4",
            "--group",
            "Bg1",
            "--no-clicks",
        ),
        ("yourls", "--database-url", GOOD, "--table-prefix", "y_", "--timezone", "Europe/Berlin"),
        ("kutt", "--database-url", GOOD),
        ("kutt", "--api-url", "https://kutt.example", "--api-key", GOOD),
        ("shlink", str(links_file)),
        ("shlink", str(links_file), "--default-domain", "s.example"),
        ("shlink", "--api-url", "https://s.example/rest", "--api-key", GOOD),
    ]
    for args in runs:
        done = kurz(*args)
        assert done.exit_code == 0, (args, done.output)
    assert opened.seen == [
        ("bitly-csv", {}, CSV, True),
        (
            "bitly",
            {
                "token": GOOD,
                "api_url": "http://127.0.0.1:9/v4",
                "group_guid": "Bg1",
                "clicks": False,
            },
            None,
            True,
        ),
        (
            "yourls",
            {"database_url": GOOD, "table_prefix": "y_", "timezone": "Europe/Berlin"},
            None,
            True,
        ),
        ("kutt", {"database_url": GOOD, "timezone": "UTC"}, None, True),
        ("kutt-api", {"api_url": "https://kutt.example", "api_key": GOOD}, None, True),
        ("shlink-csv", {"default_domain": None}, CSV, True),
        ("shlink-csv", {"default_domain": "s.example"}, CSV, True),
        ("shlink", {"api_url": "https://s.example/rest", "api_key": GOOD}, None, True),
    ]


def test_secrets_come_from_the_environment_too(kurz: Kurz, admin: int, opened: Opened) -> None:
    assert kurz("bitly", KURZ_IMPORT_TOKEN=GOOD).exit_code == 0
    assert kurz("kutt", KURZ_IMPORT_DATABASE_URL=GOOD).exit_code == 0
    assert kurz("shlink", "--api-url", "https://s.example", KURZ_IMPORT_API_KEY=GOOD).exit_code == 0
    assert [(kind, settings) for kind, settings, _, _ in opened.seen] == [
        (
            "bitly",
            {
                "token": GOOD,
                "api_url": "https://api-ssl.bitly.com/v4",
                "group_guid": None,
                "clicks": True,
            },
        ),
        ("kutt", {"database_url": GOOD, "timezone": "UTC"}),
        ("shlink", {"api_url": "https://s.example", "api_key": GOOD}),
    ]
    helped = kurz("bitly", "--help")
    assert "Shows in the process list" in helped.stdout
    assert "KURZ_IMPORT_TOKEN" in helped.stdout


def test_detached_it_is_queued_and_status_shows_it(
    kurz: Kurz, admin: int, links_file: Path, opened: Opened, database_url: str
) -> None:
    queued = kurz("csv", str(links_file), "--detach")
    assert queued.exit_code == 0, queued.output
    assert queued.stdout == "1\n"
    assert one_line(queued).startswith("import 1 is queued")
    assert opened.seen == []
    [(import_id, _, status, job_id)] = import_rows(database_url)
    assert (import_id, status) == (1, "queued")
    assert job_id is not None
    shown = kurz("status", "1")
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.splitlines()[0] == (
        "import 1 (csv, links.csv): queued; read 0: imported 0, skipped 0, failed 0; 0 clicks"
    )
    assert "started not yet; a taken alias: skip; domain: the default" in shown.stdout


def test_status_shows_the_report_failures_first(kurz: Kurz, admin: int, tmp_path: Path) -> None:
    many = tmp_path / "many.csv"
    many.write_text("".join(f"https://example.com/{n} al-{n}\n" for n in range(1, 6)) + "oops\n")
    assert kurz("csv", str(many)).exit_code == 0
    again = kurz("csv", str(many), "--on-conflict", "skip")
    assert again.exit_code == 0
    assert again.stdout.splitlines()[0].endswith("imported 0, skipped 5, failed 1; 0 clicks")
    assert "skipped (the first" not in again.stdout
    shown = kurz("status", "2", "--limit", "3")
    assert shown.exit_code == 0, shown.output
    assert [row[:3] for row in table_rows(shown.stdout)] == [
        ["6", "line 6", "failed"],
        ["1", "line 1", "skipped"],
        ["2", "line 2", "skipped"],
        ["3", "line 3", "skipped"],
    ]
    assert table_rows(shown.stdout)[1][3] == "al-1"
    assert "(the rest: more rows; --limit 0 shows them all)" in shown.stdout
    every = kurz("status", "2", "--limit", "0")
    assert [row[0] for row in table_rows(every.stdout)] == ["6", "1", "2", "3", "4", "5"]
    only = kurz("status", "2", "--outcome", "failed")
    assert [row[0] for row in table_rows(only.stdout)] == ["6"]


def test_an_import_that_fails_as_a_whole_says_why_and_exits_1(
    kurz: Kurz, admin: int, tmp_path: Path
) -> None:
    refused = kurz("bitly", "--token", "wrong")
    assert refused.exit_code == 1
    assert one_line(refused) == "error: import 1 failed: the source refused the token"
    assert refused.stdout.startswith("import 1 (bitly): failed; read 0")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00")
    broken = kurz("csv", str(binary))
    assert broken.exit_code == 1
    assert one_line(broken) == "error: import 2 failed: the file is not UTF-8 text"


def test_the_owner_is_named_or_the_first_admin(
    kurz: Kurz, links_file: Path, database_url: str
) -> None:
    nobody = kurz("csv", str(links_file))
    assert nobody.exit_code == 2
    assert one_line(nobody).startswith("error: no admin to import for: name whose links")
    bob = on(database_url, lambda db: people.new_user(db, FakeClock(), "bob@example.com"))
    for_bob = kurz("csv", str(links_file), "--owner", "Bob@Example.com")
    assert for_bob.exit_code == 0, for_bob.output
    assert {row[0] for row in stored(database_url)} == {bob}
    admin = on(
        database_url, lambda db: people.new_user(db, FakeClock(), "root@example.com", "admin")
    )
    mine = kurz("bitly", "--token", GOOD)
    assert mine.exit_code == 0, mine.output
    assert [row[1] for row in import_rows(database_url)] == [bob, admin]


def test_bad_input_is_one_line_and_exit_2(
    kurz: Kurz, admin: int, links_file: Path, database_url: str
) -> None:
    cases = {
        ("csv", str(links_file), "--on-conflict", "merge"): (
            "error: --on-conflict: 'merge' is not one of skip, rename, fail"
        ),
        ("bitly",): "error: give the CSV export as FILE, or --token (or KURZ_IMPORT_TOKEN)",
        ("bitly", str(links_file), "--token", GOOD): (
            "error: give a FILE or --token (or KURZ_IMPORT_TOKEN), not both"
        ),
        ("kutt", "--database-url", GOOD, "--api-url", "https://k.example"): (
            "error: give --database-url (or KURZ_IMPORT_DATABASE_URL) or --api-url and "
            "--api-key, not both"
        ),
        ("kutt", "--api-url", "https://k.example"): (
            "error: give --database-url (or KURZ_IMPORT_DATABASE_URL), or --api-url and "
            "--api-key (or KURZ_IMPORT_API_KEY)"
        ),
        ("shlink", "--api-key", GOOD): (
            "error: give the CSV export as FILE, or --api-url and --api-key (or "
            "KURZ_IMPORT_API_KEY)"
        ),
        ("shlink", "--api-url", "https://s.example", "--api-key", GOOD, "--default-domain", "s"): (
            "error: --default-domain goes with a FILE (Shlink's API names its default domain)"
        ),
        ("yourls",): "error: give --database-url (or KURZ_IMPORT_DATABASE_URL)",
        ("kutt", "--api-url", "https://k.example", "--api-key", GOOD, "--timezone", "UTC"): (
            "error: --timezone is for Kutt's database (--database-url) only"
        ),
        ("bitly", str(links_file), "--no-clicks"): (
            "error: give a FILE or --token (or KURZ_IMPORT_TOKEN), not both"
        ),
        ("csv", str(links_file), "--domain", "go.example"): (
            "error: domain: names no domain of this kurz's (GET /api/v1/domains lists them)"
        ),
        ("csv", str(links_file), "--owner", "nobody@example.com"): (
            "error: owner: no user has this email"
        ),
        ("status", "99"): "error: No import 99.",
        ("resume", "99"): "error: No import 99.",
        ("status", "1", "--outcome", "lost"): (
            "error: --outcome: 'lost' is not one of failed, skipped, renamed, imported"
        ),
    }
    for args, said in cases.items():
        result = kurz(*args)
        assert result.exit_code == 2, (args, result.output)
        assert one_line(result) == said, args
    for args in (("csv", "/no/such/file.csv"), ("status", "x"), ("csv",)):
        result = kurz(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output
    assert import_rows(database_url) == []


def test_resume_queues_an_import_a_killed_kurz_import_left(
    kurz: Kurz, admin: int, database_url: str, opened: Opened
) -> None:
    async def left_running(db: Database) -> int:
        # What `kurz import` leaves when it is killed: an import without a job.
        parts = build(Settings(database_url=database_url, base_url="https://s.example"))
        parts.imports.kinds = kinds(opened)
        try:
            root = await cli_imports._operator(parts, None)
            made = await parts.imports.start(
                principal=root, kind="bitly", settings={"token": GOOD}, enqueue=False
            )
            return made.id
        finally:
            await parts.db.dispose()

    import_id = on(database_url, left_running)
    resumed = kurz("resume", str(import_id))
    assert resumed.exit_code == 0, resumed.output
    assert one_line(resumed).startswith(f"import {import_id} is queued again")

    async def queued(db: Database) -> list[str]:
        async with db.read() as conn:
            return list(await conn.scalars(sa.select(jobs.c.kind).where(jobs.c.kind == JOB)))

    assert on(database_url, queued) == [JOB]


def test_stopped_with_ctrl_c_it_stays_where_it_got_to_and_resumes(
    kurz: Kurz, admin: int, tmp_path: Path, database_url: str, opened: Opened
) -> None:
    lines = [f"https://example.com/{n}" for n in range(1, 7)]
    stopping = tmp_path / "stopping.csv"
    stopping.write_text("\n".join([*lines[:2], "CTRL-C", *lines[2:]]) + "\n")
    stopped = kurz("csv", str(stopping))
    assert stopped.exit_code == 130, stopped.output
    assert one_line(stopped) == (
        "error: interrupted: import 1 stays where it got to; "
        "`kurz import resume 1` goes on from there"
    )
    assert import_rows(database_url) == [(1, admin, "running", None)]
    assert [row[2] for row in stored(database_url)] == lines[:2]
    resumed = kurz("resume", "1")
    assert resumed.exit_code == 0, resumed.output
    assert one_line(resumed) == (
        "import 1 is queued again: kurz serve's worker (or kurz worker) goes on from link 2; "
        "`kurz import status 1` follows it"
    )

    async def work(db: Database) -> None:
        parts = build(Settings(database_url=database_url, base_url="https://s.example"))
        parts.imports.kinds = kinds(opened)
        async with running(parts):
            worker = Worker(parts.jobs, parts.registry, concurrency=1)
            while await worker.run_once():
                pass

    on(database_url, work)
    [(_, _, status, job_id)] = import_rows(database_url)
    assert (status, job_id is not None) == ("finished", True)
    assert [row[2] for row in stored(database_url)] == lines
    shown = kurz("status", "1")
    assert shown.stdout.splitlines()[0] == (
        "import 1 (csv, stopping.csv): finished; read 6 of 6: imported 6, skipped 0, failed 0; "
        "0 clicks"
    )


def test_the_real_csv_source_from_the_command(
    database_url: str, admin: int, tmp_path: Path
) -> None:
    """Through kurz's own csv kind, as an operator runs it (no stand-in)."""
    links_csv = tmp_path / "links.csv"
    links_csv.write_text("url,alias\nhttps://example.com/a,first-one\nftp://x.example/,bad\n")
    env = {"KURZ_DATABASE_URL": database_url, "KURZ_BASE_URL": "https://s.example"}
    done = CliRunner().invoke(app, ["import", "csv", str(links_csv)], env=env)
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines()[0] == (
        "import 1 (csv, links.csv): finished; read 2 of 2: imported 1, skipped 0, failed 1; "
        "0 clicks"
    )
    assert [row[1:] for row in stored(database_url)] == [("first-one", "https://example.com/a")]
