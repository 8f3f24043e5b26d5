"""Whether the database can serve: the readiness probe's check (/readyz), which the
admins' system page shows too."""

from __future__ import annotations

import logging
import shutil

from kurz.db.engine import Database, DatabaseBusy
from kurz.errors import Problem

log = logging.getLogger("kurz")


def _not_ready(detail: str, headers: dict[str, str] | None = None) -> Problem:
    log.warning("readiness check failed: %s", detail)
    return Problem(503, "not-ready", "Not Ready", detail, headers=headers)


def _check_disk(db: Database, minimum: int) -> None:
    """SQLite's file is on this machine's disk, where a full disk fails every write
    (SQLITE_FULL); PostgreSQL's is on its server, out of kurz's sight."""
    if db.file is None or minimum == 0:
        return
    free = shutil.disk_usage(db.file.parent).free
    if free < minimum:
        raise _not_ready(
            f"The disk holding the database is nearly full: {free:,} bytes free, under "
            f"KURZ_READY_MIN_FREE_BYTES ({minimum:,}). Writes will soon fail."
        )


async def check_ready(db: Database, *, min_free_bytes: int) -> None:
    """Nothing if the database answers and its disk has room; else the 503 saying why."""
    try:
        await db.ping()
    except DatabaseBusy as busy:
        raise _not_ready(busy.detail, busy.headers) from None
    except Exception as exc:  # Whatever the failure, the answer is "not ready".
        log.warning("readiness check failed: %s", exc)
        raise Problem(503, "not-ready", "Not Ready", "The database does not answer.") from None
    _check_disk(db, min_free_bytes)
