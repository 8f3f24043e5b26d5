"""Through a real `kurz serve`: Slackbot unfurls a one-time link and the person who
then clicks it gets the redirect; a password link's form, posted as a browser posts it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.support import Server, kurz_env, new_key

TARGET = "https://example.com/plans"
SLACKBOT = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"
BROWSER = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
}


@pytest.fixture
def served(tmp_path: Path, database_url: str) -> Iterator[tuple[Server, str]]:
    env = kurz_env(KURZ_DATABASE_URL=database_url)
    secret = new_key(env, tmp_path, "sharer")
    server = Server(tmp_path, env)
    try:
        server.wait_ready()
        yield server, secret
    finally:
        server.stop()


def shorten(server: Server, secret: str, **fields: object) -> str:
    made = httpx.post(
        f"{server.url}/api/v1/links",
        json={"url": TARGET, **fields},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert made.status_code == 201, made.text
    return str(made.json()["short_url"])


def test_slackbot_then_a_browser_on_a_one_time_link(served: tuple[Server, str]) -> None:
    server, secret = served
    short = shorten(server, secret, max_visits=1, og_title="Plans for Q3")
    # Slack fetches a pasted link, sometimes more than once.
    for _ in range(2):
        unfurled = httpx.get(short, headers={"User-Agent": SLACKBOT})
        assert unfurled.status_code == 200
        assert "example.com" not in unfurled.text
        assert '<meta property="og:title" content="Plans for Q3">' in unfurled.text
    clicked = httpx.get(short, headers=BROWSER)
    assert clicked.status_code == 302
    assert clicked.headers["location"] == TARGET
    assert httpx.get(short, headers=BROWSER).status_code == 410


def test_a_password_form_posted_by_a_browser(served: tuple[Server, str]) -> None:
    server, secret = served
    short = shorten(server, secret, password="open sesame")
    with httpx.Client(headers=BROWSER) as browser:
        page = browser.get(short)
        assert page.status_code == 401
        assert "example.com" not in page.text
        found = re.search(r'<form method="post" action="([^"]+)">', page.text)
        assert found is not None
        action = httpx.URL(short).join(found.group(1))
        wrong = browser.post(action, data={"password": "guess"})
        assert wrong.status_code == 401
        assert "example.com" not in wrong.text
        opened = browser.post(action, data={"password": "open sesame"})
        assert opened.status_code == 303
        assert opened.headers["location"] == TARGET
