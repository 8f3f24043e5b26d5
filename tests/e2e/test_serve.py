"""`kurz serve` as a real process, driven over real HTTP and through the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.support import Server, kurz_env, new_key, run
from tests.support import free_port


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Server]:
    """kurz serve started in an empty folder with nothing configured but the port."""
    server = Server(tmp_path, kurz_env())
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def test_embedded_server_from_an_empty_folder(embedded: Server, tmp_path: Path) -> None:
    assert (tmp_path / "var" / "kurz.db").exists()

    created = run(["keys", "create", "--name", "e2e"], embedded.env, tmp_path)
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert created.stdout == secret + "\n"
    assert secret.startswith("kurz_")

    env = {**embedded.env, "KURZ_URL": embedded.url, "KURZ_API_KEY": secret}
    shortened = run(["shorten", "https://example.com/e2e", "--alias", "e2e-link"], env, tmp_path)
    assert shortened.returncode == 0, shortened.stderr
    assert shortened.stdout.strip() == f"{embedded.url}/e2e-link"

    taken = run(["shorten", "https://example.com/other", "--alias", "e2e-link"], env, tmp_path)
    assert taken.returncode == 1
    assert "409" in taken.stderr

    with httpx.Client(base_url=embedded.url) as http:
        for _ in range(2):
            response = http.get("/e2e-link")
            assert response.status_code == 302
            assert response.headers["location"] == "https://example.com/e2e"
        # A trailing slash still follows the link, and no Location comes from Host.
        slashed = http.get("/e2e-link/", headers={"Host": "evil.example"})
        assert slashed.status_code == 302
        assert slashed.headers["location"] == "https://example.com/e2e"
        for probe in ("/healthz", "/readyz"):
            head = http.head(probe)
            assert (head.status_code, head.content) == (200, b""), probe
        created_api = http.post(
            "/api/v1/links",
            json={"url": "https://example.com/api"},
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert created_api.status_code == 201
        assert created_api.json()["short_url"].startswith(embedded.url + "/")
        assert http.get("/readyz").json() == {"status": "ready"}
        spec = http.get("/openapi.json").json()
        assert spec["openapi"].startswith("3.1")
        assert "/api/v1/links" in spec["paths"]
        assert http.get("/docs").status_code == 200

        listed = run(["keys", "list"], embedded.env, tmp_path)
        assert "e2e" in listed.stdout
        assert secret not in listed.stdout
        revoked = run(["keys", "revoke", "1"], embedded.env, tmp_path)
        assert revoked.returncode == 0, revoked.stderr
        after = http.get("/api/v1/links", headers={"Authorization": f"Bearer {secret}"})
        assert after.status_code == 401
        assert run(["keys", "revoke", "99"], embedded.env, tmp_path).returncode == 1


def test_shorten_without_a_key_says_what_to_do(tmp_path: Path) -> None:
    result = run(["shorten", "https://example.com"], kurz_env(), tmp_path)
    assert result.returncode == 1
    assert "KURZ_API_KEY" in result.stderr


def test_bad_configuration_is_reported_not_a_traceback(tmp_path: Path) -> None:
    result = run(["serve"], kurz_env(KURZ_DATABASE_URL="mysql://x/y"), tmp_path)
    assert result.returncode == 1
    assert "KURZ_DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_postgres_serve_refuses_until_migrated(empty_postgres_url: str, tmp_path: Path) -> None:
    env = kurz_env(KURZ_DATABASE_URL=empty_postgres_url)
    refused = run(["serve"], {**env, "KURZ_PORT": str(free_port())}, tmp_path)
    assert refused.returncode == 1
    assert "kurz migrate" in refused.stderr
    assert "Traceback" not in refused.stderr

    migrated = run(["migrate"], env, tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    server = Server(tmp_path, env)
    try:
        server.wait_ready()
        assert httpx.get(f"{server.url}/readyz").status_code == 200
        secret = new_key(env, tmp_path, "pg", admin=True)
        response = httpx.post(
            f"{server.url}/api/v1/links",
            json={"url": "https://example.com/pg"},
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert response.status_code == 201
        code = response.json()["code"]
        assert httpx.get(f"{server.url}/{code}").headers["location"] == "https://example.com/pg"
    finally:
        server.stop()
