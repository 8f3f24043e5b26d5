"""`kurz backup`: a copy of an embedded kurz's SQLite database, made while it serves; on
PostgreSQL, the pg_dump command that makes one."""

from __future__ import annotations

import os
import shlex
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from kurz.cli_output import failure, said, usage
from kurz.cli_settings import read_settings


def backup(
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Where the copy goes (a new file). Default: kurz-<UTC time>.db here.",
        ),
    ] = None,
) -> None:
    """Copy the SQLite database while kurz runs; on PostgreSQL, print pg_dump's command.

    SQLite's online backup: one consistent moment, writers not stopped, with the
    webhooks' signing key beside it. On PostgreSQL nothing is copied (exit 2).
    """
    from sqlalchemy.engine import make_url

    settings = read_settings()
    url = make_url(settings.database_url)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    if not url.drivername.startswith("sqlite"):
        _pg_dump_advice(settings.database_url, stamp)
        raise typer.Exit(2)
    if not url.database or url.database == ":memory:":
        raise usage("KURZ_DATABASE_URL names no database file to back up")
    source = Path(url.database)
    if not source.is_file():
        # Never made here: opening it would create an empty database.
        raise failure(f"no database at {source} (KURZ_DATABASE_URL): nothing to back up")
    target = output or Path(f"kurz-{stamp}.db")
    if target.exists():
        raise usage(f"--output: {target} exists; a backup goes to a new file")
    if not target.parent.is_dir():
        raise usage(f"--output: {target.parent} is not a directory")
    try:
        _copy(source, target)
    except sqlite3.Error as exc:
        raise failure(f"cannot back up {source}: {exc}") from None
    except OSError as exc:
        raise failure(f"cannot write {target}: {exc.strerror or exc}") from None
    size = target.stat().st_size
    said(f"backed up {source} to {target} ({size / 2**20:,.1f} MiB)")
    key = source.with_name(source.name + "-webhook.key")
    if key.is_file():
        # Webhook secrets derive from it (docs/webhooks.md): restored without it, every
        # endpoint's secret changes.
        kept = target.with_name(target.name + "-webhook.key")
        shutil.copyfile(key, kept)
        kept.chmod(0o600)
        said(f"and the webhooks' signing key to {kept}")
    # The path alone on stdout, so that `FILE=$(kurz backup)` works.
    typer.echo(str(target))


def _copy(source: Path, target: Path) -> None:
    """`source` copied in one step of SQLite's backup API (one read transaction: a
    consistent moment, while writers go on under WAL), checked, and renamed into place,
    so that `target` appears whole or not at all."""
    part = target.with_name(f".{target.name}.part")
    part.unlink(missing_ok=True)
    # mode=rw: a missing file is an error, never a new empty database.
    src = sqlite3.connect(f"file:{source}?mode=rw", uri=True)
    try:
        dst = sqlite3.connect(part)
        try:
            src.backup(dst)
            # One self-contained file, whatever journal the server uses.
            dst.execute("PRAGMA journal_mode=DELETE")
            [verdict] = dst.execute("PRAGMA quick_check").fetchone()
            if verdict != "ok":
                raise sqlite3.DatabaseError(f"the copy fails its check: {verdict}")
        finally:
            dst.close()
        with part.open("rb") as copied:
            os.fsync(copied.fileno())
        os.replace(part, target)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    finally:
        src.close()


def _pg_dump_advice(database_url: str, stamp: str) -> None:
    """The pg_dump command for the database (on stdout), and why (on stderr)."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    command = ["pg_dump", "--format=custom", f"--file=kurz-{stamp}.dump"]
    if url.host:
        command.append(f"--host={url.host}")
    if url.port:
        command.append(f"--port={url.port}")
    if url.username:
        command.append(f"--username={url.username}")
    command.append(f"--dbname={url.database or 'kurz'}")
    said(
        "kurz backup copies SQLite databases; for PostgreSQL run pg_dump (below; the "
        "password from PGPASSWORD or ~/.pgpass), which is consistent while kurz runs, "
        "and pg_restore to read it back. Nothing was copied (exit 2)."
    )
    typer.echo(shlex.join(command))
