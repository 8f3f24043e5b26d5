"""Methods: every path answers HEAD where it answers GET, and a 405 names all it answers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from tests.conftest import KeyMaker
from tests.integration.links.support import create

PROBLEM = "application/problem+json"
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

# Each of kurz's paths, an example of it, and the methods it answers. Written out by
# hand: a 405's Allow is checked against this, not against the routes it is built from.
ALLOWED = {
    "/api/v1/links": ("/api/v1/links", {"GET", "HEAD", "POST"}),
    "/api/v1/links/{code}": ("/api/v1/links/abcdefg", {"GET", "HEAD", "PATCH", "DELETE"}),
    # POST is the batch's; the rest are a link's whose code is `batch` (an alias may be).
    "/api/v1/links/batch": ("/api/v1/links/batch", {"GET", "HEAD", "POST", "PATCH", "DELETE"}),
    "/api/v1/links/{code}/stats": ("/api/v1/links/abcdefg/stats", {"GET", "HEAD"}),
    "/api/v1/links/{code}/qr": ("/api/v1/links/abcdefg/qr", {"GET", "HEAD"}),
    "/api/v1/stats": ("/api/v1/stats", {"GET", "HEAD"}),
    "/api/v1/domains": ("/api/v1/domains", {"GET", "HEAD", "POST"}),
    "/api/v1/domains/{host}": ("/api/v1/domains/go.example", {"PATCH", "DELETE"}),
    "/api/v1/keys": ("/api/v1/keys", {"GET", "HEAD", "POST"}),
    "/api/v1/keys/{key_id}": ("/api/v1/keys/1", {"GET", "HEAD", "DELETE"}),
    "/api/v1/audit": ("/api/v1/audit", {"GET", "HEAD"}),
    "/api/v1/session": ("/api/v1/session", {"GET", "HEAD", "POST", "DELETE"}),
    "/api/v1/me": ("/api/v1/me", {"GET", "HEAD"}),
    "/api/v1/me/password": ("/api/v1/me/password", {"PUT"}),
    "/api/v1/me/sessions": ("/api/v1/me/sessions", {"DELETE"}),
    "/healthz": ("/healthz", {"GET", "HEAD"}),
    "/readyz": ("/readyz", {"GET", "HEAD"}),
    "/metrics": ("/metrics", {"GET", "HEAD"}),
    "/openapi.json": ("/openapi.json", {"GET", "HEAD"}),
    "/docs": ("/docs", {"GET", "HEAD"}),
    "/api/v1/users": ("/api/v1/users", {"GET", "HEAD", "POST"}),
    "/api/v1/users/{user_id}": ("/api/v1/users/1", {"GET", "HEAD", "PATCH", "DELETE"}),
    "/api/v1/users/{user_id}/reset-link": ("/api/v1/users/1/reset-link", {"POST"}),
    "/api/v1/invitations": ("/api/v1/invitations", {"GET", "HEAD"}),
    "/api/v1/invitations/{token}": ("/api/v1/invitations/tok", {"POST"}),
    "/api/v1/password-resets/{token}": ("/api/v1/password-resets/tok", {"POST"}),
    "/api/v1/setup/{token}": ("/api/v1/setup/tok", {"POST"}),
    "/_/setup/{token}": ("/_/setup/tok", {"GET", "HEAD", "POST"}),
    "/_/invite/{token}": ("/_/invite/tok", {"GET", "HEAD", "POST"}),
    "/_/reset/{token}": ("/_/reset/tok", {"GET", "HEAD", "POST"}),
    "/_/{rest}": ("/_/nothing/here", {"GET", "HEAD"}),
    "/_/static/{path}": ("/_/static/kurz.css", {"GET", "HEAD"}),
    "/": ("/", {"GET", "HEAD"}),
    "/_/dashboard": ("/_/dashboard", {"GET", "HEAD"}),
    "/_/signin": ("/_/signin", {"GET", "HEAD", "POST"}),
    "/_/signout": ("/_/signout", {"POST"}),
    "/_/account": ("/_/account", {"GET", "HEAD", "POST"}),
    "/_/links": ("/_/links", {"GET", "HEAD", "POST"}),
    "/_/new": ("/_/new", {"GET", "HEAD", "POST"}),
    "/_/links/{code}": ("/_/links/abcdefg", {"GET", "HEAD"}),
    "/_/links/{code}/edit": ("/_/links/abcdefg/edit", {"GET", "HEAD", "POST"}),
    "/_/links/{code}/delete": ("/_/links/abcdefg/delete", {"GET", "HEAD", "POST"}),
    "/_/keys": ("/_/keys", {"GET", "HEAD", "POST"}),
    "/_/keys/{key_id}/revoke": ("/_/keys/1/revoke", {"GET", "HEAD", "POST"}),
    "/_/admin": ("/_/admin", {"GET", "HEAD"}),
    "/_/admin/users": ("/_/admin/users", {"GET", "HEAD", "POST"}),
    "/_/admin/users/{user_id}": ("/_/admin/users/1", {"POST"}),
    "/_/admin/users/{user_id}/reset-link": ("/_/admin/users/1/reset-link", {"POST"}),
    "/_/admin/domains": ("/_/admin/domains", {"GET", "HEAD", "POST"}),
    "/_/admin/domains/{host}": ("/_/admin/domains/go.example", {"GET", "HEAD", "POST"}),
    "/_/admin/domains/{host}/remove": (
        "/_/admin/domains/go.example/remove",
        {"GET", "HEAD", "POST"},
    ),
    "/_/admin/jobs": ("/_/admin/jobs", {"GET", "HEAD"}),
    "/_/admin/jobs/{job_id}/retry": ("/_/admin/jobs/1/retry", {"POST"}),
    "/_/admin/system": ("/_/admin/system", {"GET", "HEAD"}),
    "/_/links/{code}/stats": ("/_/links/abcdefg/stats", {"GET", "HEAD"}),
    "/api/v1/export": ("/api/v1/export", {"GET", "HEAD"}),
    "/api/v1/webhooks": ("/api/v1/webhooks", {"GET", "HEAD", "POST"}),
    "/api/v1/webhooks/{webhook_id}": ("/api/v1/webhooks/1", {"GET", "HEAD", "PATCH", "DELETE"}),
    "/api/v1/webhooks/{webhook_id}/rotate-secret": ("/api/v1/webhooks/1/rotate-secret", {"POST"}),
    "/api/v1/webhooks/{webhook_id}/deliveries": (
        "/api/v1/webhooks/1/deliveries",
        {"GET", "HEAD"},
    ),
    "/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}": (
        "/api/v1/webhooks/1/deliveries/1",
        {"GET", "HEAD"},
    ),
    "/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver": (
        "/api/v1/webhooks/1/deliveries/1/redeliver",
        {"POST"},
    ),
    "/_/webhooks": ("/_/webhooks", {"GET", "HEAD", "POST"}),
    "/_/webhooks/{webhook_id}": ("/_/webhooks/1", {"GET", "HEAD"}),
    "/_/webhooks/{webhook_id}/delete": ("/_/webhooks/1/delete", {"GET", "HEAD", "POST"}),
    "/_/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver": (
        "/_/webhooks/1/deliveries/1/redeliver",
        {"POST"},
    ),
    "/api/v1/imports": ("/api/v1/imports", {"GET", "HEAD", "POST"}),
    "/api/v1/imports/{import_id}": ("/api/v1/imports/1", {"GET", "HEAD"}),
    "/api/v1/imports/{import_id}/report": ("/api/v1/imports/1/report", {"GET", "HEAD"}),
    "/_/imports": ("/_/imports", {"GET", "HEAD", "POST"}),
    "/_/imports/new": ("/_/imports/new", {"GET", "HEAD"}),
    "/_/imports/{import_id}": ("/_/imports/1", {"GET", "HEAD"}),
    "/_/imports/{import_id}/progress": ("/_/imports/1/progress", {"GET", "HEAD"}),
    "/{code}": ("/abcdefg", {"GET", "HEAD", "POST"}),
    "/{code}/": ("/abcdefg/", {"GET", "HEAD", "POST"}),
}
REFUSED = [
    (path, method)
    for path, allowed in ALLOWED.values()
    for method in METHODS
    if method not in allowed
]


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """Routing is the same on either database."""
    return sqlite_url


@pytest.fixture
async def admin(
    make_key: KeyMaker, client_for: Callable[[str], httpx.AsyncClient]
) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(await make_key("root", admin=True)) as client:
        yield client


def test_the_table_lists_every_route(app: FastAPI) -> None:
    paths = {route.path_format for route in iter_route_contexts(app.routes)}
    assert paths == set(ALLOWED)


@pytest.mark.parametrize(("path", "method"), REFUSED)
async def test_a_405_names_every_method_of_the_path(
    admin: httpx.AsyncClient, path: str, method: str
) -> None:
    response = await admin.request(method, path)
    assert response.status_code == 405, response.text
    allow = {part.strip() for part in response.headers["allow"].split(",")}
    assert allow == next(methods for example, methods in ALLOWED.values() if example == path)
    assert response.headers["content-type"] == PROBLEM
    if method != "HEAD":  # (a path without GET refuses HEAD too, and HEAD has no body)
        assert response.json()["type"] == "/problems/method-not-allowed"


async def test_head_answers_as_get_without_a_body(admin: httpx.AsyncClient) -> None:
    link = await create(admin)
    paths = [
        example.replace("abcdefg", link["code"])
        for example, methods in ALLOWED.values()
        if "GET" in methods
    ]
    for path in paths:
        got = await admin.get(path)
        head = await admin.head(path)
        assert head.status_code == got.status_code, path
        assert head.content == b"", path
        for header in ("content-type", "etag", "location", "content-length"):
            if path == "/metrics" and header == "content-length":
                continue  # its body counts the requests before it, the GET among them
            assert head.headers.get(header) == got.headers.get(header), (path, header)


async def test_head_of_the_probes_is_not_a_short_link(anon: httpx.AsyncClient) -> None:
    for path in ("/healthz", "/readyz"):
        response = await anon.head(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"] == "application/json"


async def test_head_of_a_link_takes_no_visit(admin: httpx.AsyncClient) -> None:
    link = await create(admin, max_visits=1)
    for _ in range(3):
        assert (await admin.head(f"/{link['code']}")).status_code == 302
    assert (await admin.get(f"/{link['code']}")).status_code == 302
    assert (await admin.get(f"/{link['code']}")).status_code == 410
