"""A 70/30 A/B link through a real `kurz serve`: 10,000 visits split within 3 points, and
each visit's click recorded with its variant."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.e2e.support import Server, kurz_env, new_key

A, B = "https://a.example/landing", "https://b.example/landing"
VISITS = 10_000
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def test_ten_thousand_visits_of_a_70_30_link_split_within_three_points(tmp_path: Path) -> None:
    # The redirect limit would stop one client at a few hundred visits. On a busy
    # machine the client may pause between two visits longer than the idle deadline
    # of a kept-alive connection (KURZ_HEAD_TIMEOUT, 10 s), and the server would close
    # it as the next visit is sent: an hour is longer than any such pause.
    server = Server(tmp_path, kurz_env(KURZ_RATELIMIT_REDIRECT="off", KURZ_HEAD_TIMEOUT="3600"))
    try:
        server.wait_ready()
        secret = new_key(server.env, tmp_path, "e2e")
        auth = {"Authorization": f"Bearer {secret}"}
        with httpx.Client(base_url=server.url) as http:
            made = http.post(
                "/api/v1/links",
                json={
                    "url": "https://example.com/",
                    "variants": [{"url": A, "weight": 70}, {"url": B, "weight": 30}],
                },
                headers=auth,
            )
            assert made.status_code == 201, made.text
            code = made.json()["code"]
            seen: Counter[str] = Counter()
            for _ in range(VISITS):
                answer = http.get(f"/{code}", headers={"User-Agent": BROWSER})
                assert answer.status_code == 302
                seen[answer.headers["location"]] += 1
    finally:
        # A graceful stop writes every queued click before it exits.
        server.stop()
    assert set(seen) == {A, B}
    share = seen[A] / VISITS
    # The standard deviation of the share is 0.46 points: 3 points is 6.5 of them.
    assert abs(share - 0.70) <= 0.03, seen

    again = Server(tmp_path, server.env)
    try:
        again.wait_ready()
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        span = {"from": today.isoformat(), "to": (today + timedelta(days=2)).isoformat()}
        with httpx.Client(base_url=again.url) as http:
            stats = http.get(f"/api/v1/links/{code}/stats", params=span, headers=auth)
        assert stats.status_code == 200, stats.text
    finally:
        again.stop()
    recorded = {item["value"]: item["clicks"] for item in stats.json()["top"]["variant"]}
    assert recorded == dict(seen)
