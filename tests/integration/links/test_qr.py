"""GET /api/v1/links/{code}/qr: a link's QR code over HTTP, read back by a real decoder,
for its owner only (by key or signed in), revalidated by its ETag."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI

from kurz.db import Database
from tests.conftest import BASE_URL, KeyMaker
from tests.integration.auth.support import admin, member
from tests.integration.links.support import create
from tests.integration.links.test_domains import add_domain
from tests.integration.web.people import browser_of
from tests.qrcodes import parse, read_png, read_svg
from tests.support import FakeClock

PROBLEM = "application/problem+json"


def qr(code: str) -> str:
    return f"/api/v1/links/{code}/qr"


@pytest.fixture
async def root(
    make_key: KeyMaker, client_for: Callable[[str], httpx.AsyncClient]
) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(await make_key("root", admin=True)) as client:
        yield client


async def test_a_links_qr_code_as_svg_and_png_reads_back_as_its_short_url(
    api: httpx.AsyncClient,
) -> None:
    link = await create(api, alias="spring")
    assert link["short_url"] == f"{BASE_URL}/spring"

    svg = await api.get(qr("spring"))
    assert svg.status_code == 200, svg.text
    assert svg.headers["content-type"] == "image/svg+xml"
    assert svg.headers["content-disposition"] == 'inline; filename="spring.svg"'
    assert svg.headers["cache-control"] == "private, max-age=300"
    assert svg.headers["content-security-policy"] == "default-src 'none'"
    assert svg.headers["x-content-type-options"] == "nosniff"
    assert parse(svg.content).attrib["width"] == "512"
    assert read_svg(svg.content).text == link["short_url"]

    png = await api.get(qr("spring"), params={"format": "png", "size": 300, "ecc": "H"})
    assert png.status_code == 200, png.text
    assert png.headers["content-type"] == "image/png"
    assert png.headers["content-disposition"] == 'inline; filename="spring.png"'
    found = read_png(png.content)
    assert (found.text, found.ec_level) == (link["short_url"], "H")
    assert png.headers["etag"] != svg.headers["etag"]

    saved = await api.get(qr("spring"), params={"format": "png", "download": "1"})
    assert saved.headers["content-disposition"] == 'attachment; filename="spring.png"'


async def test_a_link_on_another_domain_encodes_that_domains_short_url(
    api: httpx.AsyncClient, root: httpx.AsyncClient
) -> None:
    await add_domain(root, "go.example")
    await add_domain(root, "plain.example", https=False)
    await create(api, alias="sale", domain="go.example")
    await create(api, alias="sale", domain="plain.example")

    for domain, short_url in [
        ("GO.example.", "https://go.example/sale"),
        ("plain.example", "http://plain.example/sale"),
    ]:
        png = await api.get(qr("sale"), params={"format": "png", "domain": domain})
        assert png.status_code == 200, png.text
        assert read_png(png.content).text == short_url
    # Not on the default domain, nor on a domain kurz does not have.
    for params in [{}, {"domain": "x.example"}]:
        missing = await api.get(qr("sale"), params=params)
        assert (missing.status_code, missing.headers["content-type"]) == (404, PROBLEM)


async def test_if_none_match_with_the_images_etag_is_a_304(api: httpx.AsyncClient) -> None:
    code = (await create(api))["code"]
    first = await api.get(qr(code), params={"format": "png"})
    etag = first.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)

    for header in [etag, f"W/{etag}", f'"other", {etag}', "*"]:
        again = await api.get(qr(code), params={"format": "png"}, headers={"If-None-Match": header})
        assert again.status_code == 304, header
        assert again.content == b""
        assert again.headers["etag"] == etag
        assert again.headers["cache-control"] == "private, max-age=300"
    # Another image of the same link has another tag.
    svg = await api.get(qr(code), headers={"If-None-Match": etag})
    assert svg.status_code == 200
    assert svg.headers["etag"] != etag
    # A tag that is not the image's, or no tag at all, gets the image.
    for header in ['"other"', "W/other", ","]:
        fresh = await api.get(qr(code), params={"format": "png"}, headers={"If-None-Match": header})
        assert (fresh.status_code, fresh.content) == (200, first.content)


async def test_only_whoever_may_read_the_link_gets_its_qr_code(
    app: FastAPI, clock: FakeClock
) -> None:
    db = app.state.kurz.db
    alice = await member(db, clock, "alice@example.com")
    bob = await member(db, clock, "bob@example.com")
    boss = await admin(db, clock, "boss@example.com")
    transport = httpx.ASGITransport(app=app)

    def as_(secret: str) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {secret}"}
        return httpx.AsyncClient(transport=transport, base_url=BASE_URL, headers=headers)

    async with as_(alice.secret) as owner, as_(bob.secret) as other, as_(boss.secret) as chief:
        code = (await create(owner))["code"]
        assert (await owner.get(qr(code))).status_code == 200
        # The image is kept, but another member is told there is no such link.
        refused = await other.get(qr(code))
        assert (refused.status_code, refused.headers["content-type"]) == (404, PROBLEM)
        assert refused.json()["type"] == "/problems/not-found"
        assert (await chief.get(qr(code))).status_code == 200
        assert (await owner.get(qr("nosuchcode"))).status_code == 404
        assert (await owner.get(qr("no.such.code"))).status_code == 404

        # Deleted, its image is not served from the cache.
        assert (await owner.delete(f"/api/v1/links/{code}")).status_code == 204
        assert (await owner.get(qr(code))).status_code == 404
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as anon:
        assert (await anon.get(qr(code))).status_code == 401


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("format", "gif"),
        ("size", "63"),
        ("size", "2049"),
        ("size", "big"),
        ("margin", "-1"),
        ("margin", "17"),
        ("ecc", "X"),
        ("ecc", "m"),
        ("download", "maybe"),
    ],
)
async def test_a_bad_parameter_is_a_422_naming_it(
    api: httpx.AsyncClient, field: str, value: str
) -> None:
    code = (await create(api))["code"]
    response = await api.get(qr(code), params={field: value})
    assert (response.status_code, response.headers["content-type"]) == (422, PROBLEM)
    [error] = response.json()["errors"]
    assert (error["field"], error["in"]) == (field, "query")


async def test_a_signed_in_browser_gets_its_links_qr_code_with_its_session_cookie(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        made = await ada.http.post(
            "/api/v1/links",
            json={"url": "https://example.com/", "alias": "ada"},
            headers={"X-CSRF-Token": ada.csrf},
        )
        assert made.status_code == 201, made.text
        png = await ada.http.get(qr("ada"), params={"format": "png", "margin": 2})
        assert png.status_code == 200, png.text
        assert read_png(png.content).text == f"{BASE_URL}/ada"
        async with browser_of(app, db, clock, "bea@example.com") as bea:
            assert (await bea.http.get(qr("ada"))).status_code == 404
