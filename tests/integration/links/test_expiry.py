"""Expired links answer 410 for a grace period, then are retired: 404, codes never reused."""

from __future__ import annotations

from typing import Any

import httpx

from kurz.links.scheduled import retire_expired
from tests.integration.links.support import create
from tests.support import FakeClock

DAY = 86_400.0


async def test_an_expired_link_is_retired_after_the_grace_period(
    app: Any, api: httpx.AsyncClient, anon: httpx.AsyncClient, clock: FakeClock
) -> None:
    state = app.state.kurz
    expiring = await create(api, expires_at=clock.iso(60), alias="short-lived")
    lasting = await create(api, expires_at=clock.iso(100 * DAY))
    forever = await create(api)
    assert (await anon.get("/short-lived")).status_code == 302  # cached now
    clock.advance(61)
    assert (await anon.get("/short-lived")).status_code == 410

    heard: list[str] = []

    async def retired(codes: list[str]) -> None:
        heard.extend(codes)
        for code in codes:
            await state.targets.changed(code)

    # Within the grace period: kept, still 410.
    assert await retire_expired(db=state.db, clock=clock, grace=30 * DAY, retired=retired) == 0
    clock.advance(30 * DAY)
    assert await retire_expired(db=state.db, clock=clock, grace=30 * DAY, retired=retired) == 1
    assert heard == ["short-lived"]
    # Twice is harmless.
    assert await retire_expired(db=state.db, clock=clock, grace=30 * DAY, retired=retired) == 0

    assert (await anon.get("/short-lived")).status_code == 404
    assert (await api.get("/api/v1/links/short-lived")).status_code == 404
    listed = {link["code"] for link in (await api.get("/api/v1/links")).json()["items"]}
    assert listed == {lasting["code"], forever["code"]}
    # Its code is never handed out again.
    again = await api.post("/api/v1/links", json={"url": "https://e.com/", "alias": "short-lived"})
    assert again.status_code == 409
    assert expiring["code"] == "short-lived"
