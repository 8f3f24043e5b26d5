"""Targeting rules through a real `kurz serve`: an iPhone and a desktop browser
following one short link are sent to different URLs, the first visit and the cached
ones alike."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.support import Server, kurz_env, new_key

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
DESKTOP = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    server = Server(tmp_path, kurz_env())
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def test_an_iphone_and_a_desktop_are_sent_to_different_urls(server: Server, tmp_path: Path) -> None:
    secret = new_key(server.env, tmp_path, "e2e")
    rules = [
        {"url": "https://apps.apple.com/app/id1", "conditions": [{"type": "device", "in": ["ios"]}]}
    ]
    with httpx.Client(base_url=server.url) as http:
        made = http.post(
            "/api/v1/links",
            json={"url": "https://example.com/desktop", "alias": "app", "rules": rules},
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert made.status_code == 201, made.text
        # Interleaved, so that each answer after the first comes from the cached link.
        for _ in range(3):
            iphone = http.get("/app", headers={"User-Agent": IPHONE})
            desktop = http.get("/app", headers={"User-Agent": DESKTOP})
            assert (iphone.status_code, iphone.headers["location"]) == (
                302,
                "https://apps.apple.com/app/id1",
            )
            assert (desktop.status_code, desktop.headers["location"]) == (
                302,
                "https://example.com/desktop",
            )
