"""A bug still answers problem+json (a 500 is always a bug, but never an HTML page)."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_an_unhandled_error_is_a_500_problem(app: FastAPI) -> None:
    @app.get("/test/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="https://kurz.test") as client:
        response = await client.get("/test/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "/problems/internal-error"
    # The id the server's log of the traceback carries (kurz.requestid).
    assert re.fullmatch(r"[0-9a-f]{16}", response.headers["x-request-id"])
    assert "a bug" not in response.text
