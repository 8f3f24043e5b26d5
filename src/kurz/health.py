"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from kurz.config import Settings
from kurz.db import Database
from kurz.db.ready import check_ready
from kurz.deps import part
from kurz.openapi import problem, responses

router = APIRouter(tags=["health"])


@router.get(
    "/healthz", operation_id="healthz", summary="The process is alive", responses=responses()
)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    operation_id="readyz",
    summary="The database answers",
    responses=responses({503: problem("The database does not answer")}),
)
async def readyz(
    db: Annotated[Database, part("db")], settings: Annotated[Settings, part("settings")]
) -> dict[str, str]:
    await check_ready(db, min_free_bytes=settings.ready_min_free_bytes)
    return {"status": "ready"}
