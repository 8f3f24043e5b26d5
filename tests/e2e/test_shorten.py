"""`kurz shorten` with issue 21's options, against a real `kurz serve`: each option lands
in the link the API makes, and a refusal names the field without a traceback."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.support import KURZ, PATIENCE, Server, kurz_env, new_key, run

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Server, dict[str, str]]]:
    server = Server(tmp_path, kurz_env())
    try:
        server.wait_ready()
        secret = new_key(server.env, tmp_path, "e2e")
        yield server, {**kurz_env(), "KURZ_URL": server.url, "KURZ_API_KEY": secret}
    finally:
        server.stop()


def read(server: Server, env: dict[str, str], short_url: str) -> dict[str, object]:
    code = short_url.rsplit("/", 1)[1]
    found = httpx.get(
        f"{server.url}/api/v1/links/{code}",
        headers={"Authorization": f"Bearer {env['KURZ_API_KEY']}"},
    )
    assert found.status_code == 200, found.text
    link: dict[str, object] = found.json()
    return link


def test_every_option_lands_in_the_link(
    served: tuple[Server, dict[str, str]], tmp_path: Path
) -> None:
    server, env = served
    rules = tmp_path / "rules.json"
    rules.write_text(
        json.dumps(
            [
                {
                    "url": "https://apps.apple.com/app/id1",
                    "conditions": [{"type": "device", "in": ["ios"]}],
                }
            ]
        )
    )
    made = run(
        [
            "shorten", "https://example.com/app", "--alias", "cli-all", "--tag", "a",
            "--tag", "b", "--expires-at", "2999-01-01T00:00:00Z", "--rules", str(rules),
            "--variant", "https://example.com/a?x=1=70", "--variant", "https://example.com/b=30",
            "--sticky", "--fallback-expired", "https://example.com/over",
            "--og-title", "Our app",
        ],
        env,
        tmp_path,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == f"{server.url}/cli-all"
    link = read(server, env, made.stdout.strip())
    assert link["tags"] == ["a", "b"]
    assert link["expires_at"] == "2999-01-01T00:00:00Z"
    assert link["variants"] == [
        {"url": "https://example.com/a?x=1", "weight": 70},
        {"url": "https://example.com/b", "weight": 30},
    ]
    assert link["variant_choice"] == "sticky"
    assert link["fallbacks"] == {
        "not_yet": None,
        "expired": "https://example.com/over",
        "used_up": None,
    }
    assert link["og_title"] == "Our app"
    iphone = httpx.get(f"{server.url}/cli-all", headers={"User-Agent": IPHONE})
    assert (iphone.status_code, iphone.headers["location"]) == (
        302,
        "https://apps.apple.com/app/id1",
    )


def test_a_password_from_standard_input(
    served: tuple[Server, dict[str, str]], tmp_path: Path
) -> None:
    server, env = served
    made = subprocess.run(
        [KURZ, "shorten", "https://example.com/secret", "--alias", "cli-pw", "--password"],
        env=env,
        cwd=tmp_path,
        input="open sesame\n",
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    assert read(server, env, made.stdout.strip())["password_protected"] is True
    asked = httpx.get(f"{server.url}/cli-pw", headers={"Accept": "text/html"})
    assert asked.status_code == 401
    assert "example.com/secret" not in asked.text
    opened = httpx.post(f"{server.url}/cli-pw", data={"password": "open sesame"})
    assert (opened.status_code, opened.headers["location"]) == (303, "https://example.com/secret")


def test_bad_options_are_named_not_a_traceback(
    served: tuple[Server, dict[str, str]], tmp_path: Path
) -> None:
    _server, env = served
    bad_variant = run(["shorten", "https://example.com/", "--variant", "nonsense"], env, tmp_path)
    assert bad_variant.returncode == 1
    assert "URL=WEIGHT" in bad_variant.stderr
    one_variant = run(
        ["shorten", "https://example.com/", "--variant", "https://example.com/a=1"], env, tmp_path
    )
    assert one_variant.returncode == 1
    assert "422" in one_variant.stderr
    assert "variants" in one_variant.stderr
    missing = run(
        ["shorten", "https://example.com/", "--rules", str(tmp_path / "none.json")], env, tmp_path
    )
    assert missing.returncode == 1
    assert "cannot read the rules" in missing.stderr
    for result in (bad_variant, one_variant, missing):
        assert "Traceback" not in result.stderr


def test_shorten_finds_the_server_its_settings_describe(tmp_path: Path) -> None:
    """The server's own settings (KURZ_PORT, or KURZ_BASE_URL) are where `kurz shorten`
    goes; KURZ_URL, when set, names the server instead."""
    server = Server(tmp_path, kurz_env())
    try:
        server.wait_ready()
        secret = new_key(server.env, tmp_path, "e2e")
        # The server's environment, as a .env or a unit file would give both.
        same = {**server.env, "KURZ_API_KEY": secret}
        made = run(["shorten", "https://example.com/by-port", "--alias", "by-port"], same, tmp_path)
        assert made.returncode == 0, made.stderr
        assert made.stdout.strip() == f"{server.url}/by-port"

        based = {**same, "KURZ_BASE_URL": server.url, "KURZ_PORT": "1"}
        made = run(
            ["shorten", "https://example.com/by-base", "--alias", "by-base"], based, tmp_path
        )
        assert made.returncode == 0, made.stderr

        named = {**same, "KURZ_URL": server.url, "KURZ_BASE_URL": "http://127.0.0.1:1"}
        made = run(["shorten", "https://example.com/by-url", "--alias", "by-url"], named, tmp_path)
        assert made.returncode == 0, made.stderr

        elsewhere = {**same, "KURZ_PORT": "1"}
        refused = run(["shorten", "https://example.com/x"], elsewhere, tmp_path)
        assert refused.returncode == 1
        assert refused.stderr.startswith("error: cannot reach kurz at http://127.0.0.1:1:")
    finally:
        server.stop()
