"""Background work on clicks: forgetting what is past keeping (docs/analytics.md)."""

from __future__ import annotations

from typing import Any

from kurz.analytics.retention import purge
from kurz.db import Database
from kurz.jobs import Registry
from kurz.types import Clock


def register(registry: Registry, *, db: Database, clock: Clock, retention: float) -> None:
    """Purge old click events every hour. Also with analytics off: events recorded while
    it was on still age."""

    @registry.job("purge-clicks", timeout=1_800.0)
    async def purge_clicks(_payload: dict[str, Any]) -> None:
        await purge(db=db, now=clock(), retention=retention)

    registry.every("purge-clicks", 3_600.0, "purge-clicks")
