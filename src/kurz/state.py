"""What create_app wires together, and the FastAPI dependencies that hand it out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from kurz.auth.models import Principal
from kurz.cache import LRUCache
from kurz.config import Settings
from kurz.db import Database
from kurz.idempotency import Idempotency
from kurz.jobs import JobStore
from kurz.links.urls import Origins
from kurz.types import Clock

if TYPE_CHECKING:
    from kurz.analytics.pipeline import Analytics
    from kurz.limits import ServiceLimits
    from kurz.links.redirect import Redirector
    from kurz.links.service import Links


@dataclass(frozen=True, slots=True)
class AppState:
    settings: Settings
    db: Database
    clock: Clock
    redirector: Redirector
    limits: ServiceLimits
    idempotency: Idempotency
    jobs: JobStore
    links: Links
    # Where this kurz answers: targets there are refused (they would loop).
    own_origins: Origins
    # None when KURZ_ANALYTICS is off.
    analytics: Analytics | None = None
    # API keys checked lately, by secret hash (KURZ_AUTH_CACHE_TTL); None: none kept.
    principals: LRUCache[str, Principal] | None = None


async def get_state(request: Request) -> AppState:
    # async, though it awaits nothing: FastAPI runs a sync dependency in a worker
    # thread, which cost a slow-path redirect about 60 us of CPU (cProfile).
    state = request.app.state.kurz
    assert isinstance(state, AppState)
    return state


StateDep = Annotated[AppState, Depends(get_state)]
