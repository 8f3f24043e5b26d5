"""`kurz backup`: SQLite copied while another connection holds an open write (as a
serving kurz does), readable by kurz; on PostgreSQL, the pg_dump command and exit 2."""

from __future__ import annotations

import asyncio
import shlex
import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url
from typer.testing import CliRunner, Result

from kurz.cli import app
from kurz.db import Database
from tests.conftest import BASE_URL
from tests.integration.analytics.rollups import new_link
from tests.integration.auth import support as people
from tests.support import FakeClock


def kurz(database_url: str, *args: str) -> Result:
    env = {"KURZ_DATABASE_URL": database_url, "KURZ_BASE_URL": BASE_URL}
    return CliRunner().invoke(app, list(args), env=env)


async def a_link(database_url: str, code: str, url: str) -> None:
    db = Database.from_url(database_url)
    try:
        clock = FakeClock()
        await new_link(db, clock, await people.new_user(db, clock, "a@example.com"), code, url=url)
    finally:
        await db.dispose()


def links_in(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("SELECT code, url FROM links").fetchall())


def test_a_backup_made_during_a_write_holds_what_was_committed(
    sqlite_url: str, tmp_path: Path
) -> None:
    source = Path(sqlite_url.removeprefix("sqlite:///"))
    asyncio.run(a_link(sqlite_url, "kept", "https://example.com/kept"))
    writer = sqlite3.connect(source, isolation_level=None)
    key = source.with_name(source.name + "-webhook.key")
    key.write_text("k" * 43 + "\n")
    # A write in flight while the copy is made: it is not in the copy, and not stopped.
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE links SET url = 'https://example.com/changed' WHERE code = 'kept'")
    target = tmp_path / "out" / "copy.db"
    target.parent.mkdir()

    made = kurz(sqlite_url, "backup", "--output", str(target))

    writer.execute("COMMIT")
    writer.close()
    assert made.exit_code == 0, made.stderr
    assert made.stdout == f"{target}\n"
    assert links_in(target) == {"kept": "https://example.com/kept"}
    assert links_in(source) == {"kept": "https://example.com/changed"}
    kept = target.with_name("copy.db-webhook.key")
    assert kept.read_text() == key.read_text()
    assert kept.stat().st_mode & 0o777 == 0o600
    # One self-contained file: no journal beside it, nothing left half-written.
    assert sorted(path.name for path in target.parent.iterdir()) == [
        "copy.db",
        "copy.db-webhook.key",
    ]
    # kurz runs on the copy.
    shown = kurz(f"sqlite:///{target}", "links", "show", "kept", "--json")
    assert shown.exit_code == 0, shown.stderr
    assert '"url":"https://example.com/kept"' in shown.stdout


def test_a_backup_never_overwrites_nor_makes_a_database(sqlite_url: str, tmp_path: Path) -> None:
    taken = tmp_path / "taken.db"
    taken.write_bytes(b"mine")
    refused = kurz(sqlite_url, "backup", "-o", str(taken))
    assert refused.exit_code == 2
    assert refused.stderr.strip() == f"error: --output: {taken} exists; a backup goes to a new file"
    assert taken.read_bytes() == b"mine"

    missing = tmp_path / "nowhere" / "kurz.db"
    missing.parent.mkdir()
    absent = kurz(f"sqlite:///{missing}", "backup", "-o", str(tmp_path / "b.db"))
    assert absent.exit_code == 1
    assert "nothing to back up" in absent.stderr
    assert list(missing.parent.iterdir()) == []
    assert not (tmp_path / "b.db").exists()


def test_on_postgresql_it_prints_the_pg_dump_command(postgres_url: str) -> None:
    advised = kurz(postgres_url, "backup")
    assert advised.exit_code == 2
    command = shlex.split(advised.stdout)
    url = make_url(postgres_url)
    assert command[:2] == ["pg_dump", "--format=custom"]
    assert command[2].startswith("--file=kurz-")
    assert command[2].endswith(".dump")
    assert command[3:] == [
        f"--host={url.host}", f"--port={url.port}", f"--username={url.username}",
        f"--dbname={url.database}",
    ]  # fmt: skip
    assert "Nothing was copied" in advised.stderr
