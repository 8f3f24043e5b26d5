"""Liveness and readiness probes."""

from __future__ import annotations

import logging

from fastapi import APIRouter

from kurz.errors import Problem
from kurz.openapi import problem, responses
from kurz.state import StateDep

router = APIRouter(tags=["health"])
log = logging.getLogger("kurz")


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
async def readyz(state: StateDep) -> dict[str, str]:
    try:
        await state.db.ping()
    except Exception as exc:  # Whatever the failure, the answer is "not ready".
        log.warning("readiness check failed: %s", exc)
        raise Problem(503, "not-ready", "Not Ready", "The database does not answer.") from None
    return {"status": "ready"}
