"""Steps the webhook tests share: register over the API, run the worker, read back."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from kurz.jobs import Worker
from tests.support import FakeClock

HOOKS = "/api/v1/webhooks"
LINKS = "/api/v1/links"


async def register(
    api: httpx.AsyncClient, url: str, events: tuple[str, ...] = ("link.created",)
) -> dict[str, Any]:
    made = await api.post(HOOKS, json={"url": url, "events": list(events)})
    assert made.status_code == 201, made.text
    found: dict[str, Any] = made.json()
    return found


async def settle(worker: Worker) -> int:
    """Run whatever is due until nothing is (a failed delivery waits for its retry)."""
    ran = 0
    for _ in range(20):
        done = await worker.run_once()
        if not done:
            return ran
        ran += done
    raise AssertionError("jobs kept coming")


async def deliveries(api: httpx.AsyncClient, hook: dict[str, Any]) -> list[dict[str, Any]]:
    listed = await api.get(f"{HOOKS}/{hook['id']}/deliveries", params={"limit": 100})
    assert listed.status_code == 200, listed.text
    items: list[dict[str, Any]] = listed.json()["items"]
    return items


async def to_next_attempt(api: httpx.AsyncClient, hook: dict[str, Any], clock: FakeClock) -> float:
    """Move the clock to when the pending delivery is tried next; the wait."""
    [pending] = [item for item in await deliveries(api, hook) if item["status"] == "pending"]
    when = datetime.fromisoformat(pending["next_attempt_at"]).timestamp()
    waited = when - clock.now
    clock.now = max(clock.now, when)
    return waited
