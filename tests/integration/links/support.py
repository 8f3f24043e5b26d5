"""Helpers for tests that need links made through the REST API."""

from __future__ import annotations

from typing import Any

import httpx


async def create(api: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    """POST a link (to https://example.com/ unless `url` says); its JSON, asserting a 201."""
    body.setdefault("url", "https://example.com/")
    response = await api.post("/api/v1/links", json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data
