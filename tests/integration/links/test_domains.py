"""Domains: the admins' API, links on a domain, and the Host that picks a visit's domain
(every cache tier keyed per domain), with the domains' and the links' redirects."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from kurz.config import Settings
from tests.conftest import BASE_URL, Deployment
from tests.integration.cache.test_nodes import until
from tests.integration.grpc.support import new_key, rest_client
from tests.integration.links.support import create
from tests.support import FakeClock, running

DOMAINS = "/api/v1/domains"


async def add_domain(admin: httpx.AsyncClient, host: str, **more: Any) -> dict[str, Any]:
    response = await admin.post(DOMAINS, json={"host": host, **more})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def visit(anon: httpx.AsyncClient, path: str, host: str) -> httpx.Response:
    return await anon.get(path, headers={"Host": host})


async def test_admins_add_list_change_and_remove_domains(
    admin: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    made = await add_domain(admin, "Go.Example.", https=False)
    assert (made["host"], made["https"], made["root_redirect"]) == ("go.example", False, None)
    assert (await add_domain(admin, "bücher.example"))["host"] == "xn--bcher-kva.example"

    listed = (await admin.get(DOMAINS)).json()
    assert listed["default"] == "kurz.test"
    assert [item["host"] for item in listed["items"]] == ["go.example", "xn--bcher-kva.example"]

    again = await admin.post(DOMAINS, json={"host": "GO.example:443"})
    assert (again.status_code, again.json()["type"]) == (409, "/problems/domain-taken")
    default = await admin.post(DOMAINS, json={"host": "kurz.test"})
    assert default.status_code == 409
    garbage = await admin.post(DOMAINS, json={"host": "not a host"})
    assert garbage.status_code == 422
    assert (await api.get(DOMAINS)).status_code == 403
    assert (await api.post(DOMAINS, json={"host": "x.example"})).status_code == 403

    changed = await admin.patch(
        f"{DOMAINS}/GO.EXAMPLE", json={"https": True, "root_redirect": "https://e.com/home"}
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["https"], changed.json()["root_redirect"]) == (
        True,
        "https://e.com/home",
    )
    assert (await admin.patch(f"{DOMAINS}/nope.example", json={})).status_code == 404

    link = await create(api, domain="go.example")
    busy = await admin.delete(f"{DOMAINS}/go.example")
    assert (busy.status_code, busy.json()["type"]) == (409, "/problems/domain-in-use")
    gone = await api.delete(f"/api/v1/links/{link['code']}", params={"domain": "go.example"})
    assert gone.status_code == 204
    assert (await admin.delete(f"{DOMAINS}/go.example")).status_code == 204
    assert (await admin.delete(f"{DOMAINS}/go.example")).status_code == 404


async def test_a_link_belongs_to_one_domain_and_an_alias_may_be_on_two(
    admin: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    await add_domain(admin, "go.example")
    await add_domain(admin, "plain.example", https=False)
    on_default = await create(api, alias="sale", url="https://e.com/default")
    response = await api.post(
        "/api/v1/links",
        json={"alias": "sale", "url": "https://e.com/go", "domain": "GO.example."},
    )
    assert response.headers["location"] == "/api/v1/links/sale?domain=go.example"
    on_go = response.json()
    on_plain = await create(api, alias="sale", url="https://e.com/plain", domain="plain.example")
    assert on_default["domain"] == "kurz.test"
    assert on_default["short_url"] == f"{BASE_URL}/sale"
    assert (on_go["domain"], on_go["short_url"]) == ("go.example", "https://go.example/sale")
    assert on_plain["short_url"] == "http://plain.example/sale"
    taken = await api.post(
        "/api/v1/links", json={"url": "https://e.com/", "alias": "sale", "domain": "go.example"}
    )
    assert taken.status_code == 409

    loop = await api.post("/api/v1/links", json={"url": "https://GO.example/sale"})
    assert (loop.status_code, loop.json()["errors"][0]["field"]) == (422, "url")
    unknown = await api.post("/api/v1/links", json={"url": "https://e.com/", "domain": "x.example"})
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "domain"

    read = await api.get("/api/v1/links/sale", params={"domain": "go.example"})
    assert read.json()["url"] == "https://e.com/go"
    assert (await api.get("/api/v1/links/sale")).json()["url"] == "https://e.com/default"
    assert (await api.get("/api/v1/links/sale", params={"domain": "x.example"})).status_code == 404

    only_go = (await api.get("/api/v1/links", params={"domain": "go.example"})).json()
    assert [item["url"] for item in only_go["items"]] == ["https://e.com/go"]
    only_default = (await api.get("/api/v1/links", params={"domain": "kurz.test"})).json()
    assert [item["url"] for item in only_default["items"]] == ["https://e.com/default"]
    assert len((await api.get("/api/v1/links")).json()["items"]) == 3
    bad = await api.get("/api/v1/links", params={"domain": "x.example"})
    assert bad.status_code == 422

    patched = await api.patch(
        "/api/v1/links/sale",
        params={"domain": "go.example"},
        json={"url": "https://e.com/go2"},
        headers={"If-Match": '"1"'},
    )
    assert patched.status_code == 200, patched.text
    assert (await api.get("/api/v1/links/sale")).json()["version"] == 1


async def test_a_variant_on_a_domain_of_kurzs_is_a_loop_too(
    admin: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    await add_domain(admin, "go.example")
    variants = [
        {"url": "https://e.com/a", "weight": 1},
        {"url": "https://GO.example/b", "weight": 1},
    ]
    loop = await api.post("/api/v1/links", json={"url": "https://e.com/", "variants": variants})
    assert (loop.status_code, loop.json()["errors"][0]["field"]) == (422, "variants.1.url")
    link = await create(api, url="https://e.com/")
    patched = await api.patch(
        f"/api/v1/links/{link['code']}", json={"variants": variants}, headers={"If-Match": "*"}
    )
    assert (patched.status_code, patched.json()["errors"][0]["field"]) == (422, "variants.1.url")


@pytest.mark.parametrize(
    "host",
    ["go.example", "GO.Example", "go.example.", "go.example:8443", "Go.Example.:80"],
)
async def test_the_host_picks_the_domain_in_any_spelling(
    admin: httpx.AsyncClient, api: httpx.AsyncClient, anon: httpx.AsyncClient, host: str
) -> None:
    await add_domain(admin, "go.example")
    await create(api, alias="sale", url="https://e.com/default")
    await create(api, alias="sale", url="https://e.com/go", domain="go.example")
    for _ in range(2):  # a miss, then an L1 hit
        assert (await visit(anon, "/sale", host)).headers["location"] == "https://e.com/go"
        assert (await visit(anon, "/sale", "kurz.test")).headers["location"] == (
            "https://e.com/default"
        )
        # A Host that names no domain is the default domain's (KURZ_UNKNOWN_HOST=default).
        other = await visit(anon, "/sale", "elsewhere.example")
        assert other.headers["location"] == "https://e.com/default"


async def test_a_change_reaches_every_tier_for_its_domain_only(
    admin: httpx.AsyncClient, api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    await add_domain(admin, "go.example")
    await create(api, alias="sale", url="https://e.com/default")
    await create(api, alias="sale", url="https://e.com/go", domain="go.example")
    assert (await visit(anon, "/sale", "go.example")).headers["location"] == "https://e.com/go"
    await api.patch(
        "/api/v1/links/sale",
        params={"domain": "go.example"},
        json={"url": "https://e.com/go2"},
        headers={"If-Match": '"1"'},
    )
    assert (await visit(anon, "/sale", "go.example")).headers["location"] == "https://e.com/go2"
    assert (await visit(anon, "/sale", "kurz.test")).headers["location"] == (
        "https://e.com/default"
    )
    await api.delete("/api/v1/links/sale", params={"domain": "go.example"})
    assert (await visit(anon, "/sale", "go.example")).status_code == 404
    assert (await visit(anon, "/sale", "kurz.test")).status_code == 302


async def test_a_default_path_that_spells_another_domains_key_is_not_that_link(
    admin: httpx.AsyncClient, api: httpx.AsyncClient, anon: httpx.AsyncClient, app: FastAPI
) -> None:
    await add_domain(admin, "go.example")
    await create(api, alias="sale", url="https://e.com/go", domain="go.example")
    assert (await visit(anon, "/sale", "go.example")).status_code == 302
    domain = app.state.kurz.domains.named("go.example")
    assert domain is not None
    # L1 holds "<id>/sale" now; the default domain's path "/<id>/sale" must not find it.
    response = await visit(anon, f"/{domain.prefix}sale", "kurz.test")
    assert response.status_code == 404


async def test_garbage_hosts_are_never_a_500(
    api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    await create(api, alias="sale", url="https://e.com/default")
    hosts = [b"", b":", b"[::1", b"[::1]:80", b"a..b", b"-a.example", b"xn--zz.example"]
    for host in [*hosts, ("é" * 300).encode(), b"\xff\xfe.example", b"a" * 70 + b".example"]:
        response = await anon.get("/sale", headers={b"Host": host})
        assert response.status_code == 302, host


async def test_domain_and_link_redirects_stand_in_for_kurzs_pages(
    admin: httpx.AsyncClient, api: httpx.AsyncClient, anon: httpx.AsyncClient, clock: FakeClock
) -> None:
    await add_domain(
        admin,
        "go.example",
        root_redirect="https://e.com/root",
        not_found_redirect="https://e.com/missing",
        expired_redirect="https://e.com/expired",
        used_up_redirect="https://e.com/used",
    )
    root = await visit(anon, "/", "go.example")
    assert (root.status_code, root.headers["location"]) == (302, "https://e.com/root")
    # Without a root redirect, the root is the web app's: sign in (or the dashboard).
    home = await visit(anon, "/", "kurz.test")
    assert (home.status_code, home.headers["location"]) == (303, "/_/signin")
    missing = await visit(anon, "/nosuch", "go.example")
    assert (missing.status_code, missing.headers["location"]) == (302, "https://e.com/missing")
    assert (await visit(anon, "/nosuch", "kurz.test")).status_code == 404

    soon = clock.iso(60)
    later = clock.iso(3_600)
    await create(api, alias="once", max_visits=1, domain="go.example")
    await create(
        api,
        alias="own",
        max_visits=1,
        valid_from=soon,
        expires_at=later,
        domain="go.example",
        fallbacks={"not_yet": "https://e.com/wait", "used_up": "https://e.com/own-used"},
    )
    await create(api, alias="ends", expires_at=soon, domain="go.example")
    waiting = await visit(anon, "/own", "go.example")
    assert (waiting.status_code, waiting.headers["location"]) == (302, "https://e.com/wait")

    assert (await visit(anon, "/once", "go.example")).headers["location"] == "https://example.com/"
    used = await visit(anon, "/once", "go.example")
    assert (used.status_code, used.headers["location"]) == (302, "https://e.com/used")

    clock.advance(120)
    assert (await visit(anon, "/own", "go.example")).headers["location"] == "https://example.com/"
    own_used = await visit(anon, "/own", "go.example")
    assert own_used.headers["location"] == "https://e.com/own-used"
    ended = await visit(anon, "/ends", "go.example")
    assert (ended.status_code, ended.headers["location"]) == (302, "https://e.com/expired")
    read = (await api.get("/api/v1/links/own", params={"domain": "go.example"})).json()
    assert read["fallbacks"] == {
        "not_yet": "https://e.com/wait",
        "expired": None,
        "used_up": "https://e.com/own-used",
    }


async def test_instance_wide_redirects_and_refused_hosts(
    deployment: Deployment, clock: FakeClock
) -> None:
    settings: Settings = deployment.settings(
        unknown_host="refuse",
        root_redirect="https://e.com/root",
        not_found_redirect="https://e.com/missing",
    )
    async with running(settings, clock) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as anon:
            async with rest_client(app, await new_key(app, clock)) as api:
                await create(api, alias="sale", url="https://e.com/default")
            assert (await visit(anon, "/sale", "kurz.test")).status_code == 302
            assert (await visit(anon, "/sale", "KURZ.test.")).status_code == 302
            refused = await visit(anon, "/sale", "elsewhere.example")
            assert refused.status_code == 404
            root = await visit(anon, "/", "kurz.test")
            assert root.headers["location"] == "https://e.com/root"
            home = await visit(anon, "/", "elsewhere.example")
            assert (home.status_code, home.headers["location"]) == (303, "/_/signin")
            missing = await visit(anon, "/nosuch", "kurz.test")
            assert missing.headers["location"] == "https://e.com/missing"


async def test_an_idempotency_key_is_bound_to_the_domain_in_any_spelling(
    admin: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    await add_domain(admin, "go.example")

    async def post(key: str, **body: Any) -> httpx.Response:
        return await api.post(
            "/api/v1/links",
            json={"url": "https://e.com/", **body},
            headers={"Idempotency-Key": f'"{key}"'},
        )

    first = await post("k1", domain="go.example")
    again = await post("k1", domain="GO.Example.")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["code"] == first.json()["code"]
    other = await post("k1")
    assert (other.status_code, other.json()["type"]) == (422, "/problems/idempotency-key-reused")
    default = await post("k2")
    named = await post("k2", domain="KURZ.test")
    assert named.headers["idempotent-replayed"] == "true"
    assert named.json()["code"] == default.json()["code"]


@pytest.mark.parametrize("deployment", ["scaled"], indirect=True)
async def test_other_processes_hear_of_a_domain_over_the_bus(
    deployment: Deployment, app: FastAPI, admin: httpx.AsyncClient, clock: FakeClock
) -> None:
    # An hour between periodic reloads: only the bus can tell the other process in time.
    async with running(deployment.settings(redirect_cache_ttl=3_600.0), clock) as other:
        registry = other.state.kurz.domains
        await add_domain(admin, "go.example")
        await until(lambda: registry.named("go.example") is not None, "the new domain")
        await admin.delete(f"{DOMAINS}/go.example")
        await until(lambda: registry.named("go.example") is None, "the domain's removal")
