"""The OpenAPI document tells the truth: every status and header kurz sends is in it.

What each operation can send is written below from reading the code (the views, the
API-key dependency, BodyLimit, the idempotency store, the database's 503), not from
the table the document is built from. Then each of those statuses is provoked for
real, and the response checked against the document: its status, its content type,
its body against the documented schema, and kurz's own headers on it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest
import sqlalchemy as sa
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from kurz.accounts import Passwords, users
from kurz.accounts.service import Users
from kurz.app import KurzApp, create_app
from kurz.auth import queries as key_queries
from kurz.auth.models import ApiKeyCreate, Scope, scopes_for
from kurz.bootstrap import build
from kurz.clock import utcnow
from kurz.config import Settings
from kurz.db import READ_COMMITTED
from kurz.db.tables import api_keys
from kurz.idempotency import Keyed
from tests.conftest import BASE_URL, NO_LIMITS
from tests.integration.imports.front import CSV, GOOD, run_jobs, with_kinds
from tests.support import CHEAP_PASSWORDS, FakeClock, drop_connections

PROBLEM = "application/problem+json"
LINKS = "/api/v1/links"
BATCH = "/api/v1/links/batch"
KEYS = "/api/v1/keys"
SESSION = "/api/v1/session"
USERS = "/api/v1/users"
HOOKS = "/api/v1/webhooks"
IMPORTS = "/api/v1/imports"

# Operation ids, by method and path template.
OPERATIONS = {
    ("get", "/healthz"): "healthz",
    ("get", "/readyz"): "readyz",
    ("get", "/metrics"): "getMetrics",
    ("post", LINKS): "createLink",
    ("post", BATCH): "createLinks",
    ("get", LINKS): "listLinks",
    ("get", LINKS + "/{code}"): "getLink",
    ("patch", LINKS + "/{code}"): "updateLink",
    ("delete", LINKS + "/{code}"): "deleteLink",
    ("get", LINKS + "/{code}/stats"): "getLinkStats",
    ("get", LINKS + "/{code}/qr"): "getLinkQrCode",
    ("get", "/api/v1/domains"): "listDomains",
    ("post", "/api/v1/domains"): "createDomain",
    ("patch", "/api/v1/domains/{host}"): "updateDomain",
    ("delete", "/api/v1/domains/{host}"): "deleteDomain",
    ("get", "/api/v1/stats"): "getStatsSummary",
    ("get", "/api/v1/export"): "exportLinks",
    ("get", "/api/v1/audit"): "listAuditEvents",
    ("get", KEYS): "listKeys",
    ("post", KEYS): "createKey",
    ("get", KEYS + "/{key_id}"): "getKey",
    ("delete", KEYS + "/{key_id}"): "revokeKey",
    ("post", SESSION): "signIn",
    ("get", SESSION): "getSession",
    ("delete", SESSION): "signOut",
    ("get", "/api/v1/me"): "getMe",
    ("put", "/api/v1/me/password"): "changePassword",
    ("delete", "/api/v1/me/sessions"): "signOutEverywhere",
    ("get", "/{code}"): "followLink",
    ("head", "/{code}"): "followLinkHead",
    ("post", "/{code}"): "unlockLink",
    ("get", USERS): "listUsers",
    ("post", USERS): "inviteUser",
    ("get", "/api/v1/invitations"): "listInvitations",
    ("get", USERS + "/{user_id}"): "getUser",
    ("patch", USERS + "/{user_id}"): "updateUser",
    ("delete", USERS + "/{user_id}"): "deleteUser",
    ("post", USERS + "/{user_id}/reset-link"): "createResetLink",
    ("post", "/api/v1/invitations/{token}"): "acceptInvitation",
    ("post", "/api/v1/password-resets/{token}"): "resetPassword",
    ("post", "/api/v1/setup/{token}"): "completeSetup",
    ("post", HOOKS): "createWebhook",
    ("get", HOOKS): "listWebhooks",
    ("get", HOOKS + "/{webhook_id}"): "getWebhook",
    ("patch", HOOKS + "/{webhook_id}"): "updateWebhook",
    ("delete", HOOKS + "/{webhook_id}"): "deleteWebhook",
    ("post", HOOKS + "/{webhook_id}/rotate-secret"): "rotateWebhookSecret",
    ("get", HOOKS + "/{webhook_id}/deliveries"): "listWebhookDeliveries",
    ("get", HOOKS + "/{webhook_id}/deliveries/{delivery_id}"): "getWebhookDelivery",
    ("post", HOOKS + "/{webhook_id}/deliveries/{delivery_id}/redeliver"): (
        "redeliverWebhookDelivery"
    ),
    ("post", IMPORTS): "createImport",
    ("get", IMPORTS): "listImports",
    ("get", IMPORTS + "/{import_id}"): "getImport",
    ("get", IMPORTS + "/{import_id}/report"): "getImportReport",
}

# Every /api/ operation (and /metrics) runs the API-key check: 401, or 429 for the
# key's `api` policy or, after a wrong key, the client's `auth-fail` policy; the key
# lookup reads the database (503 when it does not answer); and any bug is a 500.
API = {401, 429, 500, 503}
# And each but the keys' needs a scope, which a key may lack (403).
SCOPED = API | {403}
# A write made with a session cookie but without its CSRF token.
CSRF = {403}
# An operation that reads a JSON body: malformed JSON or a non-numeric Content-Length
# (400), a body over KURZ_MAX_BODY_BYTES (413). (BodyLimit also refuses a declared
# oversize body on a bodiless request; the API's description says so once.)
BODY = {400, 413}
# The redirect: its four statuses, no such link (404), expired or used up (410), the
# client's `redirect` policy (429), the database on a cache miss or a capped link (503).
# A link-preview bot's page (200) for a capped, password or preview link; a password
# link's form (401).
FOLLOW = {200, 301, 302, 307, 308, 401, 404, 410, 429, 500, 503}
# A password link's form, posted: 303 to the target, or 401 for a wrong password; a
# refusal's fallback or domain redirect, 302.
UNLOCK = {302, 303, 401, 404, 410, 429, 500, 503} | BODY
# The one-time links' routes take no key: a bad, used or expired link is a 410, and
# counts against the client's `auth-fail` policy (429); the link's lookup reads the
# database (503).
TOKEN = {410, 429, 500, 503} | BODY

SENDS: dict[str, set[int]] = {
    "healthz": {200, 500},
    "readyz": {200, 500, 503},
    "getMetrics": {200} | SCOPED,
    # 409: the alias is taken, or the Idempotency-Key is in flight (PostgreSQL);
    # 400 also for a malformed Idempotency-Key.
    "createLink": {201, 409, 422} | BODY | SCOPED | CSRF,
    # 409: the Idempotency-Key is in flight; 422: not 1 to 1,000 links, or the key
    # reused (each link's own refusal is inside the 200).
    "createLinks": {200, 409, 422} | BODY | SCOPED | CSRF,
    "listLinks": {200, 422} | SCOPED,
    "getLink": {200, 404} | SCOPED,
    # 400 also for a malformed If-Match or Idempotency-Key; 409 only for the key.
    "updateLink": {200, 404, 409, 412, 422, 428} | BODY | SCOPED | CSRF,
    # 400: a malformed If-Match (DELETE reads no body).
    "deleteLink": {204, 400, 404, 412} | SCOPED | CSRF,
    "getLinkStats": {200, 404, 422} | SCOPED,
    # 304: If-None-Match names the image's ETag.
    "getLinkQrCode": {200, 304, 404, 422} | SCOPED,
    "getStatsSummary": {200, 422} | SCOPED,
    # 422: a format other than jsonl or csv.
    "exportLinks": {200, 422} | SCOPED,
    # 403: a key without the `admin` scope.
    "listAuditEvents": {200, 403, 422} | API,
    # 404: no such user (or not the caller); 422: a malformed user id.
    "listKeys": {200, 404, 422} | API,
    # 403: scopes beyond the user's role or the calling key's.
    "createKey": {201, 403, 404, 422} | BODY | API,
    "getKey": {200, 404} | API,
    # 403: through a key, a key with more scopes than it.
    "revokeKey": {204, 403, 404} | API,
    "followLink": FOLLOW,
    "followLinkHead": FOLLOW,
    "unlockLink": UNLOCK,
    # Signing in checks no key: 401 for a failed sign-in, 429 for the sign-in limits.
    "signIn": {204, 401, 422, 429, 500, 503} | BODY,
    # 400: called with a key, which has no session.
    "getSession": {200, 400} | API,
    "signOut": {204, 400} | API | CSRF,
    "getMe": {200} | API,
    # 422: a wrong current password, or a new one too short.
    "changePassword": {204, 422} | BODY | API | CSRF,
    "signOutEverywhere": {204} | API | CSRF,
    "listUsers": {200, 422} | SCOPED,
    # 409: the address has an account.
    "inviteUser": {201, 409, 422} | BODY | SCOPED,
    "listInvitations": {200} | SCOPED,
    # 422: an id that is not a number.
    "getUser": {200, 404, 422} | SCOPED,
    # 409: the last enabled admin.
    "updateUser": {200, 404, 409, 422} | BODY | SCOPED,
    # 409: the last enabled admin, or the caller itself; 422: no say on the links.
    "deleteUser": {204, 404, 409, 422} | SCOPED,
    "createResetLink": {201, 404, 422} | SCOPED,
    # 409: the address got an account meanwhile.
    # 409: the host is a domain already (or the default one); a domain with live links.
    "listDomains": {200} | SCOPED,
    "createDomain": {201, 409, 422} | BODY | SCOPED,
    "updateDomain": {200, 404, 422} | BODY | SCOPED,
    "deleteDomain": {204, 404, 409} | SCOPED,
    "acceptInvitation": {201, 409, 422} | TOKEN,
    "resetPassword": {204, 422} | TOKEN,
    "completeSetup": {201, 409, 422} | TOKEN,
    # 409: as many webhooks as a user may have; 503 also without KURZ_WEBHOOK_KEY.
    "createWebhook": {201, 409, 422} | BODY | SCOPED | CSRF,
    "listWebhooks": {200, 422} | SCOPED,
    "getWebhook": {200, 404} | SCOPED,
    "updateWebhook": {200, 404, 422} | BODY | SCOPED | CSRF,
    "deleteWebhook": {204, 404} | SCOPED | CSRF,
    "rotateWebhookSecret": {200, 404, 422} | BODY | SCOPED | CSRF,
    "listWebhookDeliveries": {200, 404, 422} | SCOPED,
    "getWebhookDelivery": {200, 404} | SCOPED,
    # 409: the delivery is pending already.
    "redeliverWebhookDelivery": {202, 404, 409} | SCOPED | CSRF,
    # 415: neither JSON nor a form; 413 also for a file over KURZ_IMPORT_MAX_BYTES.
    "createImport": {202, 415, 422} | BODY | SCOPED | CSRF,
    "listImports": {200, 422} | SCOPED,
    "getImport": {200, 404, 422} | SCOPED,
    "getImportReport": {200, 404, 422} | SCOPED,
}

# Operations whose every response may carry RateLimit and RateLimit-Policy: a policy
# is checked before their handler runs, and RateLimitHeaders adds the fields to
# whatever answer follows.
# Not counted against the api policy: probes, signing in (its own policies), and the
# one-time links (a failed one counts against auth-fail).
LIMITED = set(SENDS) - {
    "healthz",
    "readyz",
    "signIn",
    "acceptInvitation",
    "resetPassword",
    "completeSetup",
}

# The other headers of kurz's own, by operation and status.
HEADERS: dict[tuple[str, int], set[str]] = {
    ("createLink", 201): {"Location", "ETag", "Idempotent-Replayed"},
    ("createKey", 201): {"Location"},
    ("createWebhook", 201): {"Location"},
    ("createImport", 202): {"Location"},
    # Problems raised inside a keyed write are stored and replayed like successes.
    ("createLink", 409): {"Retry-After", "Idempotent-Replayed"},
    ("createLink", 422): {"Idempotent-Replayed"},
    ("createLinks", 200): {"Idempotent-Replayed"},
    ("createLinks", 409): {"Retry-After"},
    ("getLink", 200): {"ETag"},
    ("updateLink", 200): {"ETag", "Idempotent-Replayed"},
    ("updateLink", 404): {"Idempotent-Replayed"},
    ("updateLink", 409): {"Retry-After"},
    ("updateLink", 412): {"ETag", "Idempotent-Replayed"},
    ("updateLink", 422): {"Idempotent-Replayed"},
    ("deleteLink", 412): {"ETag"},
    ("getLinkQrCode", 200): {"ETag", "Cache-Control", "Content-Disposition"},
    ("getLinkQrCode", 304): {"ETag", "Cache-Control"},
    ("exportLinks", 200): {"Content-Disposition"},
    ("signIn", 204): {"Set-Cookie", "X-CSRF-Token"},
    ("signOut", 204): {"Set-Cookie"},
    ("changePassword", 204): {"Set-Cookie", "X-CSRF-Token"},
    ("signOutEverywhere", 204): {"Set-Cookie"},
}
# The key check's 401 says how to authenticate; a 429 and the database's 503 say when
# to retry (readyz's 503 is its own answer, without Retry-After).
HEADERS |= {
    (op_id, 401): {"WWW-Authenticate"}
    for op_id, sent in SENDS.items()
    if 401 in sent and op_id != "signIn"
}
HEADERS |= {
    (op_id, status): {"Retry-After"}
    for op_id, sent in SENDS.items()
    if op_id != "readyz"
    for status in {429, 503} & sent
}
# A redirect's Location; a permanent one's Cache-Control.
HEADERS |= {
    (op_id, status): {"Location", "Cache-Control"} if status in {301, 308} else {"Location"}
    for op_id in ("followLink", "followLinkHead")
    for status in (301, 302, 307, 308)
}
HEADERS[("unlockLink", 303)] = {"Location", "Cache-Control"}
HEADERS[("unlockLink", 302)] = {"Location"}
# The preview page and the password form are never cached.
HEADERS |= {(op_id, 200): {"Cache-Control"} for op_id in ("followLink", "followLinkHead")}
HEADERS |= {
    (op_id, 401): {"WWW-Authenticate", "Cache-Control"}
    for op_id in ("followLink", "followLinkHead", "unlockLink")
}

# Every header above, lowercased: the ones a response is checked for.
KURZ_HEADERS = {"ratelimit", "ratelimit-policy"} | {
    name.lower() for names in HEADERS.values() for name in names
}


def body_for(method: str, path: str) -> dict[str, Any] | None:
    """A body the route at `path` would take."""
    if method not in {"POST", "PATCH"}:
        return None
    one = {"url": "https://example.com/c"}
    return {"links": [one]} if path == BATCH else one


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    app = create_app(build(Settings(database_url="sqlite:///:memory:", base_url=BASE_URL)))
    return app.openapi()


def operations(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The document's operations, by the ids this test expects (from their paths)."""
    return {op_id: spec["paths"][path][method] for (method, path), op_id in OPERATIONS.items()}


def test_the_document_is_valid_openapi(spec: dict[str, Any]) -> None:
    validate(spec)


def test_operations_have_unique_camel_case_ids(spec: dict[str, Any]) -> None:
    found = {
        (method, path): op["operationId"]
        for path, item in spec["paths"].items()
        for method, op in item.items()
    }
    assert found == OPERATIONS
    assert len(set(found.values())) == len(found)
    assert all(re.fullmatch(r"[a-z][a-zA-Z0-9]*", op_id) for op_id in found.values())


def test_every_status_an_operation_can_send_is_documented_and_no_other(
    spec: dict[str, Any],
) -> None:
    documented = {
        op_id: {int(status) for status in op["responses"]} for op_id, op in operations(spec).items()
    }
    assert documented == SENDS


def test_every_error_is_problem_json_with_its_schema(spec: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    problem = {"$ref": "#/components/schemas/ProblemDetails"}
    for op_id, op in operations(spec).items():
        for status, response in op["responses"].items():
            if int(status) < 400:
                continue
            content = response["content"]
            assert content[PROBLEM]["schema"] == problem, (op_id, status)
            # Only the redirect's (and a password form's) answer a browser as HTML too.
            others = set(content) - {PROBLEM}
            pages = op_id.startswith(("followLink", "unlockLink"))
            assert others <= ({"text/html"} if pages else set())


def test_the_headers_kurz_sends_are_documented(spec: dict[str, Any]) -> None:
    for op_id, op in operations(spec).items():
        for status, response in op["responses"].items():
            expected = HEADERS.get((op_id, int(status)), set())
            if op_id in LIMITED:
                expected = expected | {"RateLimit", "RateLimit-Policy"}
            assert set(response.get("headers", {})) == expected, (op_id, status)


def test_if_match_is_required_on_patch_and_optional_on_delete(spec: dict[str, Any]) -> None:
    ops = operations(spec)

    def header(op_id: str, name: str) -> dict[str, Any]:
        params: list[dict[str, Any]] = ops[op_id]["parameters"]
        [param] = [p for p in params if p["in"] == "header" and p["name"].lower() == name]
        return param

    assert header("updateLink", "if-match")["required"] is True
    assert not header("deleteLink", "if-match").get("required", False)
    for op_id in ("createLink", "updateLink"):
        assert not header(op_id, "idempotency-key").get("required", False)


class Document:
    """Checks real responses against the document, and remembers what it saw."""

    URI = "urn:kurz:openapi"

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.registry: Registry[Any] = Registry().with_resource(
            self.URI, DRAFT202012.create_resource(spec)
        )
        self.paths = {op_id: (path, method) for (method, path), op_id in OPERATIONS.items()}
        self.seen: set[tuple[str, int]] = set()

    def schema(self, pointer: list[str]) -> Draft202012Validator:
        escaped = "/".join(part.replace("~", "~0").replace("/", "~1") for part in pointer)
        return Draft202012Validator({"$ref": f"{self.URI}#/{escaped}"}, registry=self.registry)

    def check(self, response: httpx.Response, op_id: str, status: int) -> httpx.Response:
        assert response.status_code == status, (op_id, response.status_code, response.text)
        path, method = self.paths[op_id]
        responses = self.spec["paths"][path][method]["responses"]
        assert str(status) in responses, f"{op_id} sent an undocumented {status}"
        documented = responses[str(status)]
        headers = {name.lower() for name in documented.get("headers", {})}
        sent = {name for name in response.headers if name in KURZ_HEADERS}
        assert sent <= headers, f"{op_id} {status} sent undocumented headers {sent - headers}"
        media_type = response.headers.get("content-type", "").partition(";")[0]
        content = documented.get("content", {})
        if status >= 400:
            wanted = "text/html" if "text/html" in response.request.headers["accept"] else PROBLEM
            assert media_type == wanted, (op_id, status, media_type)
        if media_type:
            assert media_type in content, f"{op_id} {status} sent undocumented {media_type}"
        elif response.content:
            pytest.fail(f"{op_id} {status} sent a body without a content type")
        if response.content and media_type in (PROBLEM, "application/json"):
            pointer = ["paths", path, method, "responses", str(status), "content", media_type]
            self.schema([*pointer, "schema"]).validate(response.json())
            if media_type == PROBLEM:
                members = self.spec["components"]["schemas"]["ProblemDetails"]["properties"]
                assert set(response.json()) <= set(members), response.json()
        self.seen.add((op_id, status))
        return response


@asynccontextmanager
async def running(settings: Settings, clock: FakeClock) -> AsyncIterator[KurzApp]:
    app = create_app(build(settings, clock=clock, passwords=Passwords(CHEAP_PASSWORDS)))
    async with app.router.lifespan_context(app):
        yield app


async def new_key(
    app: KurzApp, name: str, *, admin: bool = False, scopes: list[Scope] | None = None
) -> tuple[int, str]:
    async with app.state.kurz.db.write(READ_COMMITTED) as conn:
        created = await key_queries.create(
            conn=conn,
            key_in=ApiKeyCreate(
                name=name, scopes=scopes_for(admin=admin) if scopes is None else scopes
            ),
            now=utcnow(app.state.kurz.clock),
        )
    return created.id, created.secret


def client(app: KurzApp, secret: str | None = None) -> httpx.AsyncClient:
    headers = {} if secret is None else {"Authorization": f"Bearer {secret}"}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL, headers=headers
    )


@asynccontextmanager
async def key_in_flight(database_url: str, keyed: Keyed) -> AsyncIterator[None]:
    """Hold `keyed`'s advisory lock, as a request still running with that key does."""
    conn = await asyncpg.connect(database_url, timeout=5)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", keyed.lock_id())
        yield
    finally:
        await conn.close()


async def provoke_links(doc: Document, app: KurzApp, database_url: str) -> None:
    key_id, secret = await new_key(app, "alice")
    caller = f"key:{key_id}"
    check = doc.check
    async with client(app, secret) as api, client(app) as anon, client(app, "kurz_wrong") as bad:
        # createLink
        made = check(
            await api.post(LINKS, json={"url": "https://example.com/a"}), "createLink", 201
        )
        code, tag = made.json()["code"], made.headers["etag"]
        keyed = {"Idempotency-Key": '"create-1"'}
        body = {"url": "https://example.com/k"}
        check(await api.post(LINKS, json=body, headers=keyed), "createLink", 201)
        again = check(await api.post(LINKS, json=body, headers=keyed), "createLink", 201)
        assert again.headers["idempotent-replayed"] == "true"
        reused = {"url": "https://example.com/other"}
        check(await api.post(LINKS, json=reused, headers=keyed), "createLink", 422)
        check(await api.post(LINKS, json={"url": "ftp://example.com"}), "createLink", 422)
        loop = {"url": f"{BASE_URL}/x"}
        check(
            await api.post(LINKS, json=loop, headers={"Idempotency-Key": '"loop"'}),
            "createLink",
            422,
        )
        replayed = await api.post(LINKS, json=loop, headers={"Idempotency-Key": '"loop"'})
        assert check(replayed, "createLink", 422).headers["idempotent-replayed"] == "true"
        as_json = {"Content-Type": "application/json"}
        check(await api.post(LINKS, content=b"{", headers=as_json), "createLink", 400)
        check(
            await api.post(LINKS, json=body, headers={"Idempotency-Key": "bare"}), "createLink", 400
        )
        bad_length = {"Content-Length": "many", "Content-Type": "application/json"}
        check(await api.post(LINKS, content=b"{}", headers=bad_length), "createLink", 400)
        check(await api.post(LINKS, content=b" " * 70_000), "createLink", 413)

        async def streamed() -> AsyncIterator[bytes]:
            for _ in range(70):
                yield b" " * 1024

        check(await api.post(LINKS, content=streamed()), "createLink", 413)
        aliased = {"url": "https://example.com/a", "alias": "taken"}
        check(await api.post(LINKS, json=aliased), "createLink", 201)
        check(await api.post(LINKS, json=aliased), "createLink", 409)
        alias_key = {"Idempotency-Key": '"alias"'}
        check(await api.post(LINKS, json=aliased, headers=alias_key), "createLink", 409)
        replayed = await api.post(LINKS, json=aliased, headers=alias_key)
        assert check(replayed, "createLink", 409).headers["idempotent-replayed"] == "true"
        flying = Keyed(principal=caller, operation="create-link", key="fly", fingerprint="")
        async with key_in_flight(database_url, flying):
            busy = await api.post(LINKS, json=body, headers={"Idempotency-Key": '"fly"'})
        assert check(busy, "createLink", 409).json()["type"] == "/problems/idempotency-key-in-use"
        check(await anon.post(LINKS, json=body), "createLink", 401)
        check(await bad.post(LINKS, json=body), "createLink", 401)

        # createLinks
        many = {"links": [body, {"url": "ftp://example.com"}, aliased]}
        check(await api.post(BATCH, json=many), "createLinks", 200)
        batch_key = {"Idempotency-Key": '"batch-1"'}
        check(await api.post(BATCH, json=many, headers=batch_key), "createLinks", 200)
        again = check(await api.post(BATCH, json=many, headers=batch_key), "createLinks", 200)
        assert again.headers["idempotent-replayed"] == "true"
        fewer = {"links": many["links"][:1]}
        check(await api.post(BATCH, json=fewer, headers=batch_key), "createLinks", 422)
        check(await api.post(BATCH, json={"links": []}), "createLinks", 422)
        check(await api.post(BATCH, json={"links": [body] * 1001}), "createLinks", 422)
        check(await api.post(BATCH, content=b"{", headers=as_json), "createLinks", 400)
        bare = {"Idempotency-Key": "bare"}
        check(await api.post(BATCH, json=many, headers=bare), "createLinks", 400)
        check(await api.post(BATCH, content=b"{}", headers=bad_length), "createLinks", 400)
        # A batch's own limit (KURZ_MAX_BATCH_BODY_BYTES), past a single link's.
        check(await api.post(BATCH, content=b" " * 70_000, headers=as_json), "createLinks", 400)
        too_large = b" " * (4 * 1024 * 1024 + 1)
        check(await api.post(BATCH, content=too_large, headers=as_json), "createLinks", 413)
        flying = Keyed(principal=caller, operation="create-links", key="fly", fingerprint="")
        async with key_in_flight(database_url, flying):
            busy = await api.post(BATCH, json=many, headers={"Idempotency-Key": '"fly"'})
        assert check(busy, "createLinks", 409).json()["type"] == "/problems/idempotency-key-in-use"
        check(await anon.post(BATCH, json=many), "createLinks", 401)

        # listLinks
        check(await api.get(LINKS), "listLinks", 200)
        check(await api.get(LINKS, params={"limit": 0}), "listLinks", 422)
        check(await api.get(LINKS, params={"cursor": "nonsense"}), "listLinks", 422)
        check(await anon.get(LINKS), "listLinks", 401)

        # getLink
        one = f"{LINKS}/{code}"
        check(await api.get(one), "getLink", 200)
        check(await api.get(f"{LINKS}/nosuch"), "getLink", 404)
        check(await anon.get(one), "getLink", 401)

        # getLinkQrCode
        image = check(await api.get(f"{one}/qr"), "getLinkQrCode", 200)
        check(await api.get(f"{one}/qr", params={"format": "png"}), "getLinkQrCode", 200)
        fresh = {"If-None-Match": image.headers["etag"]}
        check(await api.get(f"{one}/qr", headers=fresh), "getLinkQrCode", 304)
        check(await api.get(f"{LINKS}/nosuch/qr"), "getLinkQrCode", 404)
        check(await api.get(f"{one}/qr", params={"size": 1}), "getLinkQrCode", 422)
        check(await anon.get(f"{one}/qr"), "getLinkQrCode", 401)

        # exportLinks
        check(await api.get("/api/v1/export"), "exportLinks", 200)
        check(await api.get("/api/v1/export", params={"format": "csv"}), "exportLinks", 200)
        check(await api.get("/api/v1/export", params={"format": "xml"}), "exportLinks", 422)
        check(await anon.get("/api/v1/export"), "exportLinks", 401)

        # updateLink
        change = {"url": "https://example.com/b"}
        changed = check(
            await api.patch(one, json=change, headers={"If-Match": tag}), "updateLink", 200
        )
        tag = changed.headers["etag"]
        keyed_if = {"If-Match": tag, "Idempotency-Key": '"patch-1"'}
        check(await api.patch(one, json={"tags": ["x"]}, headers=keyed_if), "updateLink", 200)
        replayed = await api.patch(one, json={"tags": ["x"]}, headers=keyed_if)
        assert check(replayed, "updateLink", 200).headers["idempotent-replayed"] == "true"
        stale = {"If-Match": tag, "Idempotency-Key": '"stale"'}
        check(await api.patch(one, json=change, headers=stale), "updateLink", 412)
        replayed = await api.patch(one, json=change, headers=stale)
        assert check(replayed, "updateLink", 412).headers["idempotent-replayed"] == "true"
        check(await api.patch(one, json=change), "updateLink", 428)
        check(await api.patch(one, json=change, headers={"If-Match": "3"}), "updateLink", 400)
        malformed = {"If-Match": "*", **as_json}
        check(await api.patch(one, content=b"{", headers=malformed), "updateLink", 400)
        missing = {"If-Match": "*", "Idempotency-Key": '"gone"'}
        check(await api.patch(f"{LINKS}/nosuch", json=change, headers=missing), "updateLink", 404)
        replayed = await api.patch(f"{LINKS}/nosuch", json=change, headers=missing)
        assert check(replayed, "updateLink", 404).headers["idempotent-replayed"] == "true"
        null = {"If-Match": "*", "Idempotency-Key": '"null"'}
        check(await api.patch(one, json={"url": None}, headers=null), "updateLink", 422)
        replayed = await api.patch(one, json={"url": None}, headers=null)
        assert check(replayed, "updateLink", 422).headers["idempotent-replayed"] == "true"
        big = {"If-Match": "*", "Content-Type": "application/json"}
        check(await api.patch(one, content=b" " * 70_000, headers=big), "updateLink", 413)
        flying = Keyed(principal=caller, operation="update-link", key="fly", fingerprint="")
        async with key_in_flight(database_url, flying):
            busy = await api.patch(
                one, json=change, headers={"If-Match": "*", "Idempotency-Key": '"fly"'}
            )
        check(busy, "updateLink", 409)
        check(await anon.patch(one, json=change, headers={"If-Match": "*"}), "updateLink", 401)

        # getLinkStats and getStatsSummary
        check(await api.get(f"{one}/stats"), "getLinkStats", 200)
        check(await api.get(f"{LINKS}/nosuch/stats"), "getLinkStats", 404)
        naive = {"from": "2026-01-01T00:00:00"}
        check(await api.get(f"{one}/stats", params=naive), "getLinkStats", 422)
        check(await anon.get(f"{one}/stats"), "getLinkStats", 401)
        check(await api.get("/api/v1/stats"), "getStatsSummary", 200)
        check(await api.get("/api/v1/stats", params=naive), "getStatsSummary", 422)
        check(await anon.get("/api/v1/stats"), "getStatsSummary", 401)

        # deleteLink
        check(await api.delete(one, headers={"If-Match": '"1"'}), "deleteLink", 412)
        check(await api.delete(one, headers={"If-Match": "1"}), "deleteLink", 400)
        check(await anon.delete(one), "deleteLink", 401)
        check(await api.delete(one), "deleteLink", 204)
        check(await api.delete(one), "deleteLink", 404)

        # A database that went away: the key lookup of any /api/ call fails first.
        for op_id, method, path in [
            ("createLink", "POST", LINKS),
            ("createLinks", "POST", BATCH),
            ("listLinks", "GET", LINKS),
            ("getLink", "GET", f"{LINKS}/taken"),
            ("updateLink", "PATCH", f"{LINKS}/taken"),
            ("deleteLink", "DELETE", f"{LINKS}/taken"),
            ("getLinkStats", "GET", f"{LINKS}/taken/stats"),
            ("getLinkQrCode", "GET", f"{LINKS}/taken/qr"),
            ("getStatsSummary", "GET", "/api/v1/stats"),
            ("listKeys", "GET", KEYS),
            ("createKey", "POST", KEYS),
            ("getKey", "GET", f"{KEYS}/1"),
            ("revokeKey", "DELETE", f"{KEYS}/1"),
        ]:
            await api.get(LINKS)  # a pooled connection to lose
            await drop_connections(database_url)
            payload = body_for(method, path)
            response = await api.request(method, path, json=payload, headers={"If-Match": "*"})
            check(response, op_id, 503)


async def provoke_scopes(doc: Document, app: KurzApp) -> None:
    """Every route that needs a scope, called with a key of none."""
    _, secret = await new_key(app, "nothing", scopes=[])
    async with client(app, secret) as api:
        for op_id, method, path in [
            ("createLink", "POST", LINKS),
            ("createLinks", "POST", BATCH),
            ("listLinks", "GET", LINKS),
            ("getLink", "GET", f"{LINKS}/taken"),
            ("updateLink", "PATCH", f"{LINKS}/taken"),
            ("deleteLink", "DELETE", f"{LINKS}/taken"),
            ("getLinkStats", "GET", f"{LINKS}/taken/stats"),
            ("getLinkQrCode", "GET", f"{LINKS}/taken/qr"),
            ("getStatsSummary", "GET", "/api/v1/stats"),
            ("exportLinks", "GET", "/api/v1/export"),
            ("getMetrics", "GET", "/metrics"),
            ("createImport", "POST", IMPORTS),
            ("listImports", "GET", IMPORTS),
            ("getImport", "GET", f"{IMPORTS}/1"),
            ("getImportReport", "GET", f"{IMPORTS}/1/report"),
        ]:
            payload = body_for(method, path)
            response = await api.request(method, path, json=payload, headers={"If-Match": "*"})
            assert doc.check(response, op_id, 403).json()["type"] == "/problems/insufficient-scope"


async def provoke_keys(doc: Document, app: KurzApp) -> None:
    check = doc.check
    _, secret = await new_key(app, "erin")
    async with client(app, secret) as api, client(app) as anon:
        made = check(await api.post(KEYS, json={"name": "reader", "scopes": ["links:read"]}),
                     "createKey", 201).json()  # fmt: skip
        check(await api.post(KEYS, json={"name": "p", "scopes": ["proxy"]}), "createKey", 403)
        check(await api.post(KEYS, json={"name": "u", "user": 999_999}), "createKey", 404)
        check(await api.post(KEYS, json={"scopes": []}), "createKey", 422)
        as_json = {"Content-Type": "application/json"}
        check(await api.post(KEYS, content=b"{", headers=as_json), "createKey", 400)
        check(await api.post(KEYS, content=b" " * 70_000, headers=as_json), "createKey", 413)
        check(await anon.post(KEYS, json={"name": "x"}), "createKey", 401)

        check(await api.get(KEYS), "listKeys", 200)
        check(await api.get(KEYS, params={"user": 999_999}), "listKeys", 404)
        check(await api.get(KEYS, params={"user": "me"}), "listKeys", 422)
        check(await anon.get(KEYS), "listKeys", 401)

        one = f"{KEYS}/{made['id']}"
        check(await api.get(one), "getKey", 200)
        check(await api.get(f"{KEYS}/999999"), "getKey", 404)
        check(await anon.get(one), "getKey", 401)

        async with client(app, made["secret"]) as reader:
            mine = (await api.get(KEYS)).json()["items"][0]["id"]
            check(await reader.delete(f"{KEYS}/{mine}"), "revokeKey", 403)
        check(await api.delete(one), "revokeKey", 204)
        check(await api.delete(f"{KEYS}/999999"), "revokeKey", 404)
        check(await anon.delete(one), "revokeKey", 401)


async def provoke_service(doc: Document, app: KurzApp, database_url: str) -> None:
    _, secret = await new_key(app, "ops", admin=True)
    _, plain = await new_key(app, "bob")
    async with client(app, secret) as admin, client(app, plain) as api, client(app) as anon:
        doc.check(await anon.get("/healthz"), "healthz", 200)
        doc.check(await anon.get("/readyz"), "readyz", 200)
        await drop_connections(database_url)
        doc.check(await anon.get("/readyz"), "readyz", 503)
        doc.check(await admin.get("/metrics"), "getMetrics", 200)
        doc.check(await api.get("/metrics"), "getMetrics", 403)
        doc.check(await anon.get("/metrics"), "getMetrics", 401)
        await api.get("/readyz")
        await drop_connections(database_url)
        doc.check(await admin.get("/metrics"), "getMetrics", 503)
        audit = "/api/v1/audit"
        doc.check(await admin.get(audit), "listAuditEvents", 200)
        doc.check(await admin.get(audit, params={"event": "nope"}), "listAuditEvents", 422)
        doc.check(await api.get(audit), "listAuditEvents", 403)
        doc.check(await anon.get(audit), "listAuditEvents", 401)
        await drop_connections(database_url)
        doc.check(await admin.get(audit), "listAuditEvents", 503)
        await api.get("/readyz")  # a pooled connection to lose
        await drop_connections(database_url)
        doc.check(await api.get("/api/v1/export"), "exportLinks", 503)


async def provoke_redirects(
    doc: Document, app: KurzApp, database_url: str, clock: FakeClock
) -> None:
    _, secret = await new_key(app, "carol")
    async with client(app, secret) as api, client(app) as anon:

        async def link(**fields: object) -> str:
            made = await api.post(LINKS, json={"url": "https://example.com/", **fields})
            assert made.status_code == 201, made.text
            return str(made.json()["code"])

        html = {"Accept": "text/html"}
        for op_id, method in (("followLink", "GET"), ("followLinkHead", "HEAD")):
            for status in (301, 302, 307, 308):
                code = await link(redirect_status=status)
                # The first visit reads through the route; the second comes from L1.
                for _ in range(2):
                    doc.check(await anon.request(method, f"/{code}"), op_id, status)
            doc.check(await anon.request(method, "/nosuch"), op_id, 404)
            doc.check(await anon.request(method, "/nosuch", headers=html), op_id, 404)
            expiring = await link(expires_at=clock.iso(60))
            clock.advance(61)
            doc.check(await anon.request(method, f"/{expiring}"), op_id, 410)
            doc.check(await anon.request(method, f"/{expiring}", headers=html), op_id, 410)
            capped = await link(max_visits=1)
            # A HEAD never uses a visit up, so a GET does for both.
            doc.check(await anon.get(f"/{capped}"), "followLink", 302)
            doc.check(await anon.request(method, f"/{capped}"), op_id, 410)
            # A capped link in L1 still asks the database for its visit.
            await drop_connections(database_url)
            doc.check(await anon.request(method, f"/{capped}"), op_id, 503)
            # A link-preview bot gets a page; a password link asks for its password.
            slackbot = {"User-Agent": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"}
            doc.check(await anon.request(method, f"/{capped}", headers=slackbot), op_id, 200)
            locked = await link(password="open sesame")
            doc.check(await anon.request(method, f"/{locked}"), op_id, 401)
            doc.check(await anon.request(method, f"/{locked}", headers=html), op_id, 401)
        await provoke_unlock(doc, api, anon, database_url, link, clock)


async def provoke_unlock(
    doc: Document,
    api: httpx.AsyncClient,
    anon: httpx.AsyncClient,
    database_url: str,
    link: Callable[..., Awaitable[str]],
    clock: FakeClock,
) -> None:
    html = {"Accept": "text/html"}
    locked = await link(password="open sesame", max_visits=1)
    right, wrong = {"password": "open sesame"}, {"password": "nope"}
    doc.check(await anon.post("/nosuch", data=right), "unlockLink", 404)
    doc.check(await anon.post(f"/{locked}", data=wrong), "unlockLink", 401)
    doc.check(await anon.post(f"/{locked}", data=wrong, headers=html), "unlockLink", 401)
    doc.check(await anon.post(f"/{locked}", data=right), "unlockLink", 303)
    doc.check(await anon.post(f"/{locked}", data=right), "unlockLink", 410)
    doc.check(await anon.post(f"/{locked}", data=right, headers=html), "unlockLink", 410)
    falls_back = await link(
        password="open sesame", max_visits=1, fallbacks={"used_up": "https://e.com/used"}
    )
    doc.check(await anon.post(f"/{falls_back}", data=right), "unlockLink", 303)
    doc.check(await anon.post(f"/{falls_back}", data=right), "unlockLink", 302)
    await drop_connections(database_url)
    doc.check(await anon.post(f"/{locked}", data=right), "unlockLink", 503)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    bad_length = {**form, "Content-Length": "many"}
    doc.check(await anon.post(f"/{locked}", content=b"", headers=bad_length), "unlockLink", 400)
    doc.check(await anon.post(f"/{locked}", content=b" " * 70_000), "unlockLink", 413)
    other = await link(password="open sesame")
    for _ in range(20):
        response = await anon.post(f"/{other}", data=wrong)
        if response.status_code == 429:
            break
        doc.check(response, "unlockLink", 401)
    doc.check(response, "unlockLink", 429)


async def new_user(app: KurzApp, email: str, password: str) -> int:
    parts = app.state.kurz
    async with parts.db.write(READ_COMMITTED) as conn:
        return await users.create(
            conn,
            email=email,
            role="member",
            now=utcnow(parts.clock),
            password_hash=parts.passwords.hash(password),
        )


def browser(app: KurzApp, ip: str = "127.0.0.1") -> httpx.AsyncClient:
    """A client that keeps cookies, calling from `ip`."""
    transport = httpx.ASGITransport(app=app, client=(ip, 40_000))
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL)


async def provoke_sessions(doc: Document, app: KurzApp, database_url: str) -> None:
    password, new_password = "correct horse battery staple", "a much better passphrase"
    await new_user(app, "erin@example.com", password)
    _, secret = await new_key(app, "frank")
    check = doc.check
    erin = {"email": "erin@example.com", "password": password}
    me, sessions, change = "/api/v1/me", "/api/v1/me/sessions", "/api/v1/me/password"
    async with browser(app) as web, client(app, secret) as api, client(app) as anon:
        # signIn
        csrf = {
            "X-CSRF-Token": check(await web.post(SESSION, json=erin), "signIn", 204).headers[
                "x-csrf-token"
            ]
        }
        check(await anon.post(SESSION, json={**erin, "password": "wrong"}), "signIn", 401)
        check(await anon.post(SESSION, json={"email": "erin@example.com"}), "signIn", 422)
        as_json = {"Content-Type": "application/json"}
        check(await anon.post(SESSION, content=b"{", headers=as_json), "signIn", 400)
        check(await anon.post(SESSION, content=b" " * 70_000, headers=as_json), "signIn", 413)
        async with browser(app, ip="192.0.2.9") as guesser:
            wrong = {"email": "nobody@example.com", "password": "guess"}
            statuses = [(await guesser.post(SESSION, json=wrong)).status_code for _ in range(6)]
            assert statuses == [401] * 5 + [429]
            check(await guesser.post(SESSION, json=wrong), "signIn", 429)

        # getSession, getMe
        check(await web.get(SESSION), "getSession", 200)
        check(await api.get(SESSION), "getSession", 400)
        check(await anon.get(SESSION), "getSession", 401)
        check(await web.get(me), "getMe", 200)
        check(await api.get(me), "getMe", 200)
        check(await anon.get(me), "getMe", 401)

        # Writes with the cookie and no token.
        check(await web.post(LINKS, json={"url": "https://example.com/"}), "createLink", 403)
        many = {"links": [{"url": "https://example.com/"}]}
        check(await web.post(BATCH, json=many), "createLinks", 403)
        made = await api.post(LINKS, json={"url": "https://example.com/"})
        one = f"{LINKS}/{made.json()['code']}"
        check(await web.patch(one, json={"tags": []}, headers={"If-Match": "*"}), "updateLink", 403)
        check(await web.delete(one), "deleteLink", 403)
        check(await web.delete(SESSION), "signOut", 403)
        check(await web.delete(sessions), "signOutEverywhere", 403)
        body = {"current_password": password, "new_password": new_password}
        check(await web.put(change, json=body), "changePassword", 403)
        upload = {"file": ("links.txt", b"https://example.com/\n", "text/plain")}
        check(await web.post(IMPORTS, data={"source": "csv"}, files=upload), "createImport", 403)

        # changePassword
        wrong_current = {**body, "current_password": "wrong"}
        check(await web.put(change, json=wrong_current, headers=csrf), "changePassword", 422)
        check(
            await web.put(change, content=b"{", headers={**csrf, **as_json}), "changePassword", 400
        )
        big = {**csrf, **as_json}
        check(await web.put(change, content=b" " * 70_000, headers=big), "changePassword", 413)
        check(await anon.put(change, json=body), "changePassword", 401)
        changed = check(await web.put(change, json=body, headers=csrf), "changePassword", 204)
        csrf = {"X-CSRF-Token": changed.headers["x-csrf-token"]}

        # signOut, signOutEverywhere
        check(await api.delete(SESSION), "signOut", 400)
        check(await anon.delete(SESSION), "signOut", 401)
        check(await web.delete(SESSION, headers=csrf), "signOut", 204)
        csrf = {"X-CSRF-Token": await sign_in(web, {**erin, "password": new_password})}
        check(await anon.delete(sessions), "signOutEverywhere", 401)
        check(await web.delete(sessions, headers=csrf), "signOutEverywhere", 204)

        # A database that went away: the session (or key) lookup fails first.
        csrf = {"X-CSRF-Token": await sign_in(web, {**erin, "password": new_password})}
        for op_id, method, path, payload in [
            ("getSession", "GET", SESSION, None),
            ("getMe", "GET", me, None),
            ("signOut", "DELETE", SESSION, None),
            ("changePassword", "PUT", change, body),
            ("signOutEverywhere", "DELETE", sessions, None),
            ("signIn", "POST", SESSION, erin),
        ]:
            await api.get(LINKS)  # a pooled connection to lose
            await drop_connections(database_url)
            response = await web.request(method, path, json=payload, headers=csrf)
            check(response, op_id, 503)


async def sign_in(web: httpx.AsyncClient, body: dict[str, str]) -> str:
    response = await web.post(SESSION, json=body)
    assert response.status_code == 204, response.text
    return response.headers["x-csrf-token"]


async def provoke_session_limits(doc: Document, app: KurzApp) -> None:
    """The session operations, once the user's `api` policy is used up."""
    password = "correct horse battery staple"
    await new_user(app, "gina@example.com", password)
    async with browser(app) as web:
        csrf = {
            "X-CSRF-Token": await sign_in(web, {"email": "gina@example.com", "password": password})
        }
        doc.check(await web.get("/api/v1/me"), "getMe", 200)
        body = {"current_password": password, "new_password": "a much better passphrase"}
        for op_id, method, path, payload in [
            ("getSession", "GET", SESSION, None),
            ("getMe", "GET", "/api/v1/me", None),
            ("signOut", "DELETE", SESSION, None),
            ("changePassword", "PUT", "/api/v1/me/password", body),
            ("signOutEverywhere", "DELETE", "/api/v1/me/sessions", None),
        ]:
            response = await web.request(method, path, json=payload, headers=csrf)
            assert response.headers["retry-after"]
            doc.check(response, op_id, 429)


async def provoke_users(doc: Document, app: KurzApp, database_url: str) -> None:
    admin_id, secret = await new_key(app, "root", admin=True)
    async with app.state.kurz.db.read() as conn:
        admin_id = await conn.scalar(sa.select(api_keys.c.user_id).where(api_keys.c.id == admin_id))
    _, plain = await new_key(app, "mia")
    check = doc.check
    users: Users = app.state.kurz.users
    me = f"{USERS}/{admin_id}"
    as_json = {"Content-Type": "application/json"}
    big = b" " * 70_000
    async with client(app, secret) as admin, client(app, plain) as mia, client(app) as anon:
        for op_id, method, path in [
            ("listUsers", "GET", USERS),
            ("inviteUser", "POST", USERS),
            ("listInvitations", "GET", "/api/v1/invitations"),
            ("getUser", "GET", me),
            ("updateUser", "PATCH", me),
            ("deleteUser", "DELETE", me),
            ("createResetLink", "POST", f"{me}/reset-link"),
        ]:
            body = {"email": "x@example.com"} if method in {"POST", "PATCH"} else None
            check(await mia.request(method, path, json=body), op_id, 403)
            check(await anon.request(method, path, json=body), op_id, 401)

        # listUsers, listInvitations, getUser
        check(await admin.get(USERS), "listUsers", 200)
        check(await admin.get(USERS, params={"limit": 0}), "listUsers", 422)
        check(await admin.get("/api/v1/invitations"), "listInvitations", 200)
        check(await admin.get(me), "getUser", 200)
        check(await admin.get(f"{USERS}/999999"), "getUser", 404)
        check(await admin.get(f"{USERS}/me"), "getUser", 422)

        # inviteUser
        invited = check(
            await admin.post(USERS, json={"email": "new@example.com"}), "inviteUser", 201
        )
        own_email = (await admin.get(me)).json()["email"]
        check(await admin.post(USERS, json={"email": own_email}), "inviteUser", 409)
        check(await admin.post(USERS, json={"email": "nobody"}), "inviteUser", 422)
        check(await admin.post(USERS, content=b"{", headers=as_json), "inviteUser", 400)
        check(await admin.post(USERS, content=big, headers=as_json), "inviteUser", 413)

        # acceptInvitation
        token = invited.json()["invitation_url"].rsplit("/", 1)[1]
        accept = f"/api/v1/invitations/{token}"
        check(await anon.post(accept, json={"password": "short"}), "acceptInvitation", 422)
        check(await anon.post(accept, content=b"{", headers=as_json), "acceptInvitation", 400)
        check(await anon.post(accept, content=big, headers=as_json), "acceptInvitation", 413)
        joined = check(
            await anon.post(accept, json={"password": "long enough"}), "acceptInvitation", 201
        )
        check(await anon.post(accept, json={"password": "long enough"}), "acceptInvitation", 410)
        taken = await admin.post(USERS, json={"email": "late@example.com"})
        await users.create(email="late@example.com", password="long enough")
        late = f"/api/v1/invitations/{taken.json()['invitation_url'].rsplit('/', 1)[1]}"
        check(await anon.post(late, json={"password": "long enough"}), "acceptInvitation", 409)

        # updateUser, createResetLink, resetPassword
        joined_id = joined.json()["id"]
        one = f"{USERS}/{joined_id}"
        check(await admin.patch(one, json={"display_name": "New"}), "updateUser", 200)
        check(await admin.patch(one, json={"role": "owner"}), "updateUser", 422)
        check(await admin.patch(f"{USERS}/999999", json={}), "updateUser", 404)
        check(await admin.patch(one, content=b"{", headers=as_json), "updateUser", 400)
        check(await admin.patch(one, content=big, headers=as_json), "updateUser", 413)
        others = (await admin.get(USERS, params={"role": "admin", "limit": 100})).json()["items"]
        for other in others:
            if other["id"] != admin_id:
                await admin.patch(f"{USERS}/{other['id']}", json={"disabled": True})
        check(await admin.patch(me, json={"role": "member"}), "updateUser", 409)
        link = check(await admin.post(f"{one}/reset-link"), "createResetLink", 201)
        check(await admin.post(f"{USERS}/999999/reset-link"), "createResetLink", 404)
        check(await admin.post(f"{USERS}/me/reset-link"), "createResetLink", 422)
        reset = f"/api/v1/password-resets/{link.json()['reset_url'].rsplit('/', 1)[1]}"
        check(await anon.post(reset, json={"password": "short"}), "resetPassword", 422)
        check(await anon.post(reset, content=b"{", headers=as_json), "resetPassword", 400)
        check(await anon.post(reset, content=big, headers=as_json), "resetPassword", 413)
        check(await anon.post(reset, json={"password": "long enough"}), "resetPassword", 204)
        check(await anon.post(reset, json={"password": "long enough"}), "resetPassword", 410)

        # completeSetup: while no admin can sign in (the admins here have keys only).
        url = await users.setup_link()
        assert url is not None
        setup = f"/api/v1/setup/{url.rsplit('/', 1)[1]}"
        first = {"email": "first@example.com", "password": "long enough"}
        check(await anon.post(setup, json={**first, "email": own_email}), "completeSetup", 409)
        check(await anon.post(setup, json={**first, "password": "x"}), "completeSetup", 422)
        check(await anon.post(setup, content=b"{", headers=as_json), "completeSetup", 400)
        check(await anon.post(setup, content=big, headers=as_json), "completeSetup", 413)
        check(await anon.post(setup, json=first), "completeSetup", 201)
        check(await anon.post(setup, json=first), "completeSetup", 410)

        # deleteUser
        check(await admin.delete(one), "deleteUser", 422)
        check(await admin.delete(f"{me}?links=delete"), "deleteUser", 409)
        check(await admin.delete(f"{USERS}/999999?links=delete"), "deleteUser", 404)
        check(await admin.delete(f"{one}?links=delete"), "deleteUser", 204)

        # A database that went away: the key lookup, or the link's, fails first.
        for op_id, method, path, body in [
            ("listUsers", "GET", USERS, None),
            ("inviteUser", "POST", USERS, {"email": "y@example.com"}),
            ("listInvitations", "GET", "/api/v1/invitations", None),
            ("getUser", "GET", me, None),
            ("updateUser", "PATCH", me, {}),
            ("deleteUser", "DELETE", f"{me}?links=delete", None),
            ("createResetLink", "POST", f"{me}/reset-link", None),
            ("acceptInvitation", "POST", accept, {"password": "long enough"}),
            ("resetPassword", "POST", reset, {"password": "long enough"}),
            ("completeSetup", "POST", setup, first),
        ]:
            await admin.get(USERS)  # a pooled connection to lose
            await drop_connections(database_url)
            check(await admin.request(method, path, json=body), op_id, 503)


async def provoke_domains(doc: Document, app: KurzApp, database_url: str) -> None:
    _, secret = await new_key(app, "ops", admin=True)
    _, plain = await new_key(app, "nia")
    check = doc.check
    domains = "/api/v1/domains"
    one = f"{domains}/go.example"
    as_json = {"Content-Type": "application/json"}
    big = b" " * 70_000
    async with client(app, secret) as admin, client(app, plain) as nia, client(app) as anon:
        for op_id, method, path in [
            ("listDomains", "GET", domains),
            ("createDomain", "POST", domains),
            ("updateDomain", "PATCH", one),
            ("deleteDomain", "DELETE", one),
        ]:
            body = {"host": "x.example"} if method == "POST" else None
            check(await nia.request(method, path, json=body), op_id, 403)
            check(await anon.request(method, path, json=body), op_id, 401)
        check(await admin.post(domains, json={"host": "go.example"}), "createDomain", 201)
        check(await admin.post(domains, json={"host": "GO.example"}), "createDomain", 409)
        check(await admin.post(domains, json={"host": "a b"}), "createDomain", 422)
        check(await admin.post(domains, content=b"{", headers=as_json), "createDomain", 400)
        check(await admin.post(domains, content=big, headers=as_json), "createDomain", 413)
        check(await admin.get(domains), "listDomains", 200)
        check(await admin.patch(one, json={"https": False}), "updateDomain", 200)
        check(await admin.patch(one, json={"https": "no"}), "updateDomain", 422)
        check(await admin.patch(f"{domains}/x.example", json={}), "updateDomain", 404)
        check(await admin.patch(one, content=b"{", headers=as_json), "updateDomain", 400)
        check(await admin.patch(one, content=big, headers=as_json), "updateDomain", 413)
        made = await admin.post(LINKS, json={"url": "https://e.com/", "domain": "go.example"})
        check(await admin.delete(one), "deleteDomain", 409)
        await admin.delete(f"{LINKS}/{made.json()['code']}", params={"domain": "go.example"})
        check(await admin.delete(one), "deleteDomain", 204)
        check(await admin.delete(one), "deleteDomain", 404)
        for op_id, method, path, body in [
            ("listDomains", "GET", domains, None),
            ("createDomain", "POST", domains, {"host": "y.example"}),
            ("updateDomain", "PATCH", one, {}),
            ("deleteDomain", "DELETE", one, None),
        ]:
            await admin.get(domains)  # a pooled connection to lose
            await drop_connections(database_url)
            check(await admin.request(method, path, json=body), op_id, 503)


async def provoke_webhooks(doc: Document, app: KurzApp, database_url: str) -> None:
    _, secret = await new_key(app, "hooks")
    _, linker = await new_key(app, "linker", scopes=["links:read", "links:write"])
    check = doc.check
    as_json = {"Content-Type": "application/json"}
    big = b" " * 70_000
    hook = {"url": "https://hooks.example/in", "events": ["link.created"]}
    async with client(app, secret) as api, client(app, linker) as other, client(app) as anon:
        made = check(await api.post(HOOKS, json=hook), "createWebhook", 201).json()
        one = f"{HOOKS}/{made['id']}"
        deliveries = f"{one}/deliveries"
        check(await api.post(HOOKS, json={**hook, "url": "ftp://x.example/"}), "createWebhook", 422)
        check(await api.post(HOOKS, content=b"{", headers=as_json), "createWebhook", 400)
        check(await api.post(HOOKS, content=big, headers=as_json), "createWebhook", 413)
        check(await api.get(HOOKS), "listWebhooks", 200)
        check(await api.get(HOOKS, params={"cursor": "!"}), "listWebhooks", 422)
        check(await api.get(one), "getWebhook", 200)
        check(await api.get(f"{HOOKS}/999999"), "getWebhook", 404)
        check(await api.patch(one, json={"description": "mine"}), "updateWebhook", 200)
        check(await api.patch(one, json={"events": []}), "updateWebhook", 422)
        check(await api.patch(f"{HOOKS}/999999", json={}), "updateWebhook", 404)
        check(await api.patch(one, content=b"{", headers=as_json), "updateWebhook", 400)
        check(await api.patch(one, content=big, headers=as_json), "updateWebhook", 413)
        rotate = f"{one}/rotate-secret"
        check(await api.post(rotate), "rotateWebhookSecret", 200)
        check(await api.post(rotate, json={"expire_previous_in": -1}), "rotateWebhookSecret", 422)
        check(await api.post(f"{HOOKS}/999999/rotate-secret"), "rotateWebhookSecret", 404)
        check(await api.post(rotate, content=b"{", headers=as_json), "rotateWebhookSecret", 400)
        check(await api.post(rotate, content=big, headers=as_json), "rotateWebhookSecret", 413)

        await api.post(LINKS, json={"url": "https://example.com/hooked"})
        listed = check(await api.get(deliveries), "listWebhookDeliveries", 200).json()
        sent = f"{deliveries}/{listed['items'][0]['id']}"
        check(await api.get(deliveries, params={"status": "lost"}), "listWebhookDeliveries", 422)
        check(await api.get(f"{HOOKS}/999999/deliveries"), "listWebhookDeliveries", 404)
        check(await api.get(sent), "getWebhookDelivery", 200)
        check(await api.get(f"{deliveries}/999999"), "getWebhookDelivery", 404)
        check(await api.post(f"{sent}/redeliver"), "redeliverWebhookDelivery", 409)
        # As a worker leaves it when its attempts run out.
        async with app.state.kurz.db.write(READ_COMMITTED) as conn:
            await conn.execute(sa.text("UPDATE jobs SET state = 'dead' WHERE queue = 'webhooks'"))
        check(await api.post(f"{sent}/redeliver"), "redeliverWebhookDelivery", 202)
        check(await api.post(f"{deliveries}/9/redeliver"), "redeliverWebhookDelivery", 404)

        for n in range(19):
            await api.post(HOOKS, json={**hook, "url": f"https://hooks.example/{n}"})
        check(await api.post(HOOKS, json=hook), "createWebhook", 409)
        check(await api.delete(one), "deleteWebhook", 204)
        check(await api.delete(one), "deleteWebhook", 404)

        for op_id, method, path in [
            ("createWebhook", "POST", HOOKS),
            ("listWebhooks", "GET", HOOKS),
            ("getWebhook", "GET", one),
            ("updateWebhook", "PATCH", one),
            ("deleteWebhook", "DELETE", one),
            ("rotateWebhookSecret", "POST", f"{one}/rotate-secret"),
            ("listWebhookDeliveries", "GET", deliveries),
            ("getWebhookDelivery", "GET", sent),
            ("redeliverWebhookDelivery", "POST", f"{sent}/redeliver"),
        ]:
            body = hook if op_id == "createWebhook" else None
            check(await other.request(method, path, json=body), op_id, 403)
            check(await anon.request(method, path, json=body), op_id, 401)
            await api.get(HOOKS)  # a pooled connection to lose
            await drop_connections(database_url)
            check(await api.request(method, path, json=body), op_id, 503)


async def provoke_imports(doc: Document, app: KurzApp, database_url: str) -> None:
    with_kinds(app)
    _, secret = await new_key(app, "mover")
    check = doc.check
    as_json = {"Content-Type": "application/json"}
    upload = {"file": ("links.txt", CSV, "text/plain")}
    async with client(app, secret) as api, client(app) as anon:
        made = check(
            await api.post(IMPORTS, data={"source": "csv"}, files=upload), "createImport", 202
        ).json()
        one = f"{IMPORTS}/{made['id']}"
        body = {"source": "bitly", "settings": {"token": GOOD}}
        check(await api.post(IMPORTS, json=body), "createImport", 202)
        check(await api.post(IMPORTS, json={"source": "tinyurl"}), "createImport", 422)
        check(await api.post(IMPORTS, data={"source": "csv"}), "createImport", 422)
        check(await api.post(IMPORTS, content=b"{", headers=as_json), "createImport", 400)
        bad_length = {"Content-Length": "many", **as_json}
        check(await api.post(IMPORTS, content=b"{}", headers=bad_length), "createImport", 400)
        check(await api.post(IMPORTS, content=b" " * 70_000, headers=as_json), "createImport", 413)
        plain = {"Content-Type": "text/plain"}
        check(await api.post(IMPORTS, content=b"csv", headers=plain), "createImport", 415)
        check(await anon.post(IMPORTS, json=body), "createImport", 401)

        await run_jobs(app)
        check(await api.get(IMPORTS), "listImports", 200)
        check(await api.get(IMPORTS, params={"limit": 0}), "listImports", 422)
        check(await anon.get(IMPORTS), "listImports", 401)
        check(await api.get(one), "getImport", 200)
        check(await api.get(f"{IMPORTS}/999999"), "getImport", 404)
        check(await api.get(f"{IMPORTS}/one"), "getImport", 422)
        check(await anon.get(one), "getImport", 401)
        check(await api.get(f"{one}/report"), "getImportReport", 200)
        check(await api.get(f"{one}/report", params={"outcome": "failed"}), "getImportReport", 200)
        check(await api.get(f"{IMPORTS}/999999/report"), "getImportReport", 404)
        check(await api.get(f"{one}/report", params={"outcome": "lost"}), "getImportReport", 422)
        check(await anon.get(f"{one}/report"), "getImportReport", 401)

        for op_id, method, path in [
            ("createImport", "POST", IMPORTS),
            ("listImports", "GET", IMPORTS),
            ("getImport", "GET", one),
            ("getImportReport", "GET", f"{one}/report"),
        ]:
            # Pooled connections to lose: each of the pool's (the worker opened several),
            # since those older than the last 503 are replaced unseen when taken.
            for _ in range(10):
                await api.get(IMPORTS)
            await drop_connections(database_url)
            payload = body if method == "POST" else None
            check(await api.request(method, path, json=payload), op_id, 503)


async def provoke_limits(doc: Document, app: KurzApp) -> None:
    """Every limited operation, once its policy is used up (the clock stands still)."""
    _, secret = await new_key(app, "dave", admin=True)
    async with client(app, secret) as api, client(app) as anon, client(app, "kurz_no") as bad:
        code = doc.check(
            await api.post(LINKS, json={"url": "https://example.com/"}), "createLink", 201
        ).json()["code"]
        doc.check(await anon.get(f"/{code}"), "followLink", 302)
        for op_id, method, path in [
            ("createLink", "POST", LINKS),
            ("createLinks", "POST", BATCH),
            ("listLinks", "GET", LINKS),
            ("getLink", "GET", f"{LINKS}/{code}"),
            ("updateLink", "PATCH", f"{LINKS}/{code}"),
            ("deleteLink", "DELETE", f"{LINKS}/{code}"),
            ("getLinkStats", "GET", f"{LINKS}/{code}/stats"),
            ("getLinkQrCode", "GET", f"{LINKS}/{code}/qr"),
            ("getStatsSummary", "GET", "/api/v1/stats"),
            ("exportLinks", "GET", "/api/v1/export"),
            ("getMetrics", "GET", "/metrics"),
            ("listAuditEvents", "GET", "/api/v1/audit"),
            ("listKeys", "GET", KEYS),
            ("createKey", "POST", KEYS),
            ("getKey", "GET", f"{KEYS}/1"),
            ("revokeKey", "DELETE", f"{KEYS}/1"),
            ("listUsers", "GET", USERS),
            ("inviteUser", "POST", USERS),
            ("listInvitations", "GET", "/api/v1/invitations"),
            ("getUser", "GET", f"{USERS}/1"),
            ("updateUser", "PATCH", f"{USERS}/1"),
            ("deleteUser", "DELETE", f"{USERS}/1"),
            ("createResetLink", "POST", f"{USERS}/1/reset-link"),
            ("listDomains", "GET", "/api/v1/domains"),
            ("createDomain", "POST", "/api/v1/domains"),
            ("updateDomain", "PATCH", "/api/v1/domains/x.example"),
            ("deleteDomain", "DELETE", "/api/v1/domains/x.example"),
            ("createWebhook", "POST", HOOKS),
            ("listWebhooks", "GET", HOOKS),
            ("getWebhook", "GET", f"{HOOKS}/1"),
            ("updateWebhook", "PATCH", f"{HOOKS}/1"),
            ("deleteWebhook", "DELETE", f"{HOOKS}/1"),
            ("rotateWebhookSecret", "POST", f"{HOOKS}/1/rotate-secret"),
            ("listWebhookDeliveries", "GET", f"{HOOKS}/1/deliveries"),
            ("getWebhookDelivery", "GET", f"{HOOKS}/1/deliveries/1"),
            ("redeliverWebhookDelivery", "POST", f"{HOOKS}/1/deliveries/1/redeliver"),
            ("createImport", "POST", IMPORTS),
            ("listImports", "GET", IMPORTS),
            ("getImport", "GET", f"{IMPORTS}/1"),
            ("getImportReport", "GET", f"{IMPORTS}/1/report"),
        ]:
            payload = body_for(method, path)
            response = await api.request(method, path, json=payload, headers={"If-Match": "*"})
            assert response.headers["retry-after"]
            doc.check(response, op_id, 429)
        # A wrong key counts against the client's auth-fail policy, and so does a bad link.
        doc.check(await bad.get(LINKS), "listLinks", 401)
        doc.check(await bad.get(LINKS), "listLinks", 429)
        for op_id, route in [
            ("acceptInvitation", "invitations"),
            ("resetPassword", "password-resets"),
            ("completeSetup", "setup"),
        ]:
            body = {"email": "a@example.com", "password": "long enough"}
            if route != "setup":
                del body["email"]
            response = await anon.post(f"/api/v1/{route}/guess", json=body)
            assert response.headers["retry-after"]
            doc.check(response, op_id, 429)
        for op_id, method in (("followLink", "GET"), ("followLinkHead", "HEAD")):
            doc.check(await anon.request(method, f"/{code}"), op_id, 429)
            doc.check(
                await anon.request(method, f"/{code}", headers={"Accept": "text/html"}), op_id, 429
            )


async def test_every_status_kurz_sends_is_documented_as_sent(
    postgres_url: str, clock: FakeClock
) -> None:
    """On PostgreSQL, where an Idempotency-Key can be in flight (409) and the server can
    drop the app's connections (503); every status in SENDS but a bug's 500 is provoked."""
    base = {
        "database_url": postgres_url,
        "base_url": BASE_URL,
        "embedded_worker": False,
        "analytics": False,
        "webhook_key": "k" * 32,
    }
    async with running(Settings.model_validate({**base, **NO_LIMITS}), clock) as app:
        async with client(app) as anon:
            doc = Document((await anon.get("/openapi.json")).json())
        await provoke_links(doc, app, postgres_url)
        await provoke_scopes(doc, app)
        await provoke_keys(doc, app)
        await provoke_service(doc, app, postgres_url)
        await provoke_redirects(doc, app, postgres_url, clock)
        await provoke_sessions(doc, app, postgres_url)
        await provoke_users(doc, app, postgres_url)
        await provoke_domains(doc, app, postgres_url)
        await provoke_webhooks(doc, app, postgres_url)
        await provoke_imports(doc, app, postgres_url)
    one_each = dict.fromkeys(NO_LIMITS, "1/60s")
    async with running(Settings.model_validate({**base, **one_each}), clock) as app:
        await provoke_limits(doc, app)
        await provoke_session_limits(doc, app)
    expected = {(op_id, status) for op_id, statuses in SENDS.items() for status in statuses}
    assert doc.seen == expected - {(op_id, 500) for op_id in SENDS}
