"""Liveness and readiness probes."""

from __future__ import annotations

import logging
import shutil
from typing import Annotated

from fastapi import APIRouter

from kurz.config import Settings
from kurz.db import Database, DatabaseBusy
from kurz.deps import part
from kurz.errors import Problem
from kurz.openapi import problem, responses

router = APIRouter(tags=["health"])
log = logging.getLogger("kurz")


@router.get(
    "/healthz", operation_id="healthz", summary="The process is alive", responses=responses()
)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


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


@router.get(
    "/readyz",
    operation_id="readyz",
    summary="The database answers",
    responses=responses({503: problem("The database does not answer")}),
)
async def readyz(
    db: Annotated[Database, part("db")], settings: Annotated[Settings, part("settings")]
) -> dict[str, str]:
    try:
        await db.ping()
    except DatabaseBusy as busy:
        raise _not_ready(busy.detail, busy.headers) from None
    except Exception as exc:  # Whatever the failure, the answer is "not ready".
        log.warning("readiness check failed: %s", exc)
        raise Problem(503, "not-ready", "Not Ready", "The database does not answer.") from None
    _check_disk(db, settings.ready_min_free_bytes)
    return {"status": "ready"}
