"""What every `kurz` command does first: read the settings, warn about misspelt ones,
and find the database; each refusal is one line on stderr, never a traceback."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    # Imported by the functions that use them: `kurz --help` reads no settings, and
    # kurz.db.failures would import SQLAlchemy (docs/benchmarks.md, "Start-up").
    from kurz.config import Settings

err = Console(stderr=True)


def fail(message: str, *, code: int = 1) -> typer.Exit:
    # One line however long, so that logs and `2>&1 | grep` keep it whole.
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def usage(message: str) -> typer.Exit:
    """Bad input or configuration: said in one line, exit status 2 (as a usage error)."""
    return fail(message, code=2)


def read_settings() -> Settings:
    """The settings, after a warning for each KURZ_* variable that sets nothing."""
    from pydantic import ValidationError

    from kurz.config import Settings, unknown_variables

    for warning in unknown_variables(os.environ):
        err.print(f"warning: {escape(warning)}", highlight=False, soft_wrap=True)
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"KURZ_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}"
            if e["loc"]
            else str(e["ctx"]["error"]) if "error" in e.get("ctx", {}) else e["msg"]
            for e in exc.errors()
        )  # fmt: skip
        raise fail(f"bad configuration: {problems}") from None


def require_database(settings: Settings) -> None:
    """Refuse to go on when the SQLite database does not exist: an admin command run
    from another directory would otherwise make a new, empty one, and a key it printed
    would be unknown to the server. Only `kurz migrate` and `kurz serve` create it."""
    from kurz.db.failures import sqlite_file

    file = sqlite_file(settings.database_url)
    if file is not None and not file.exists():
        raise usage(
            f"no kurz database at {file} "
            "(run kurz migrate, or set KURZ_DATA_DIR / KURZ_DATABASE_URL)"
        )


def prepare_database(settings: Settings) -> None:
    """Make room for a new SQLite database (`kurz migrate`, `kurz serve`): the data
    directory is made when the database is in it (KURZ_DATA_DIR, one level, its parent
    must exist); a directory that KURZ_DATABASE_URL names must exist already, so that
    a typo is said rather than followed."""
    from kurz.db.failures import sqlite_file

    file = sqlite_file(settings.database_url)
    if file is None or file.parent.is_dir():
        return
    if "database_url" in settings.model_fields_set:
        raise usage(
            f"the directory {file.parent} does not exist: create it, or fix KURZ_DATABASE_URL"
        )
    try:
        file.parent.mkdir()
    except OSError as exc:
        raise usage(f"cannot make KURZ_DATA_DIR {file.parent}: {exc.strerror or exc}") from None


def database_failure(exc: BaseException, settings: Settings) -> typer.Exit:
    """The one line for a database that could not be opened or reached."""
    from kurz.db.failures import connect_failure

    said = connect_failure(exc, settings.database_url)
    if said is None:
        said = f"cannot reach the database: {exc.__cause__ or exc}"
    return fail(said)
