"""What create_app wires together, and the FastAPI dependencies that hand it out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from kurz.config import Settings
from kurz.db import Database
from kurz.idempotency import Idempotency
from kurz.types import Clock

if TYPE_CHECKING:
    from kurz.limits import ServiceLimits
    from kurz.links.redirect import Redirector


@dataclass(frozen=True, slots=True)
class AppState:
    settings: Settings
    db: Database
    clock: Clock
    redirector: Redirector
    limits: ServiceLimits
    idempotency: Idempotency


def get_state(request: Request) -> AppState:
    state = request.app.state.kurz
    assert isinstance(state, AppState)
    return state


StateDep = Annotated[AppState, Depends(get_state)]
