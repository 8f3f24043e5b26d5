"""Two domains on one real `kurz serve`: the Host header picks a visit's domain, and
one alias on each leads somewhere else; domains added with the CLI before it starts,
and over the API while it runs."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.e2e.support import Server, kurz_env, new_key, run


def test_two_domains_on_one_server_chosen_by_host(tmp_path: Path) -> None:
    env = kurz_env(KURZ_BASE_URL="https://kurz.example")
    assert run(["migrate"], env, tmp_path).returncode == 0
    added = run(["domains", "add", "Go.Example.", "--http"], env, tmp_path)
    assert added.returncode == 0, added.stderr
    assert "go.example" in added.stderr
    server = Server(tmp_path, env)
    try:
        server.wait_ready()
        admin = new_key(server.env, tmp_path, "ops", admin=True)
        auth = {"Authorization": f"Bearer {admin}"}
        with httpx.Client(base_url=server.url, headers=auth) as http:
            made = http.post("/api/v1/domains", json={"host": "bücher.example"})
            assert made.status_code == 201, made.text
            links = {
                "": "https://example.com/default",
                "go.example": "https://example.com/go",
                "xn--bcher-kva.example": "https://example.com/books",
            }
            for domain, url in links.items():
                body = {"url": url, "alias": "sale", **({"domain": domain} if domain else {})}
                created = http.post("/api/v1/links", json=body)
                assert created.status_code == 201, created.text
            short = http.get("/api/v1/links", params={"domain": "go.example"}).json()
            assert [item["short_url"] for item in short["items"]] == ["http://go.example/sale"]

        with httpx.Client(base_url=server.url) as anon:
            hosts = {
                "kurz.example": links[""],
                "GO.example:8080": links["go.example"],
                "go.example.": links["go.example"],
                "xn--bcher-kva.example": links["xn--bcher-kva.example"],
                "unknown.example": links[""],
            }
            for _ in range(2):  # a miss, then an L1 hit
                for host, url in hosts.items():
                    response = anon.get("/sale", headers={"Host": host})
                    assert response.status_code == 302, host
                    assert response.headers["location"] == url, host
            assert anon.get("/nosuch", headers={"Host": "go.example"}).status_code == 404

        listed = run(["domains", "list"], env, tmp_path)
        assert listed.returncode == 0, listed.stderr
        assert "go.example" in listed.stdout
        assert "xn--bcher-kva.example" in listed.stdout
        busy = run(["domains", "remove", "go.example"], env, tmp_path)
        assert busy.returncode == 1
        assert "live links" in busy.stderr
    finally:
        server.stop()
