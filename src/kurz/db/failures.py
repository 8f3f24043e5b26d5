"""What an operator is told when kurz cannot open its database: one line, never a traceback."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import make_url

# PostgreSQL's SQLSTATEs for a refused connection (Appendix A of its manual).
_NO_DATABASE = "3D000"
_BAD_PASSWORD = "28P01"  # noqa: S105 (an error code)
_NOT_AUTHORISED = "28000"


def sqlite_file(database_url: str) -> Path | None:
    """The file a SQLite URL names, absolute; None for PostgreSQL or memory."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database).expanduser().resolve()


def _where(database_url: str) -> str:
    url = make_url(database_url)
    return f"{url.host or 'localhost'}:{url.port or 5432}"


def _sqlstate(exc: BaseException) -> tuple[str, str] | None:
    """The SQLSTATE and message of the PostgreSQL error behind `exc`, if any."""
    seen: BaseException | None = exc
    while seen is not None:
        state = getattr(seen, "sqlstate", None)
        if isinstance(state, str) and state:
            return state, str(getattr(seen, "message", "") or seen)
        seen = seen.__cause__ or getattr(seen, "orig", None)
    return None


def _os_error(exc: BaseException) -> OSError | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError):
            return seen
        seen = seen.__cause__ or getattr(seen, "orig", None)
    return None


def connect_failure(exc: BaseException, database_url: str) -> str | None:
    """One line saying why the database in `database_url` could not be opened and what
    to do, or None when `exc` is not about opening it."""
    file = sqlite_file(database_url)
    if file is not None:
        error = _os_error(exc)
        name = getattr(getattr(exc, "orig", None), "sqlite_errorname", "")
        if error is None and name != "SQLITE_CANTOPEN":
            return None
        reason = error.strerror if error is not None and error.strerror else "cannot be opened"
        return f"cannot open the SQLite database {file}: {reason} (check KURZ_DATA_DIR)"
    url = make_url(database_url)
    where = _where(database_url)
    found = _sqlstate(exc)
    if found is not None:
        state, message = found
        if state == _NO_DATABASE:
            return (
                f'database "{url.database}" does not exist on {where}: create it '
                f"(createdb {url.database}) or fix KURZ_DATABASE_URL"
            )
        if state in {_BAD_PASSWORD, _NOT_AUTHORISED}:
            return (
                f"PostgreSQL on {where} refused the connection: {message} (fix KURZ_DATABASE_URL)"
            )
        return None
    error = _os_error(exc)
    if isinstance(error, TimeoutError) or isinstance(exc, TimeoutError):
        return f"PostgreSQL on {where} did not answer in time (is it running? KURZ_DATABASE_URL)"
    if error is not None:
        reason = os.strerror(error.errno) if error.errno else str(error) or type(error).__name__
        return (
            f"cannot connect to PostgreSQL on {where}: {reason.lower()} "
            "(is it running? check KURZ_DATABASE_URL)"
        )
    return None
