"""The OpenAPI document: what each route can answer, its errors as problem+json.

A route declares its answers with `responses(...)`, by status, naming the headers
each may carry; `complete` adds the schemas and headers those refer to, to the
document FastAPI builds.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from kurz.errors import PROBLEM_JSON

# OpenAPI `responses` entries, by status: a route's (FastAPI's type), and a group's.
Responses = dict[int | str, dict[str, Any]]
Answers = Mapping[int, dict[str, Any]]

_SCHEMAS = "#/components/schemas/"
_HEADERS = "#/components/headers/"

SCHEMAS: dict[str, dict[str, Any]] = {
    "ProblemDetails": {
        "title": "ProblemDetails",
        "description": "An RFC 9457 problem: every kurz error (docs/problems.md lists the types).",
        "type": "object",
        "required": ["type", "title", "status", "detail", "instance"],
        "properties": {
            "type": {
                "type": "string",
                "format": "uri-reference",
                "description": "The problem type, relative to this server's origin; "
                "`about:blank` where the status says it all.",
                "examples": ["/problems/validation-error"],
            },
            "title": {"type": "string", "description": "The problem type's summary."},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string", "description": "What went wrong with this request."},
            "instance": {
                "type": "string",
                "format": "uri-reference",
                "description": "The path of the request.",
            },
            "errors": {
                "type": "array",
                "items": {"$ref": _SCHEMAS + "FieldError"},
                "description": "Validation problems only: one entry per failing field.",
            },
            "violated-policies": {
                "type": "array",
                "items": {
                    "type": "string",
                    "enum": [
                        "api",
                        "redirect",
                        "auth-fail",
                        "signin-ip",
                        "signin-account",
                        "link-password",
                    ],
                },
                "description": "429 only: the rate-limit policies that are used up.",
            },
            "required_scope": {
                "type": "string",
                "description": "403 `insufficient-scope` only: the scope the call needs.",
                "examples": ["admin"],
            },
            "scopes": {
                "type": "array",
                "items": {"type": "string"},
                "description": "`scope-exceeds-role` and `scope-exceeds-key` only: the "
                "scopes asked for that are beyond the role or the key.",
            },
        },
    },
    "FieldError": {
        "title": "FieldError",
        "type": "object",
        "required": ["field", "in", "message"],
        "properties": {
            "field": {"type": "string", "description": "The field; a nested one dotted."},
            "in": {"type": "string", "enum": ["body", "query", "path", "header", "cookie"]},
            "message": {"type": "string"},
        },
    },
}

HEADERS: dict[str, dict[str, Any]] = {
    "ETag": {
        "description": 'The link\'s current version as a strong entity tag, e.g. `"3"`: '
        "send it as If-Match to change or delete that version only.",
        "schema": {"type": "string", "pattern": r'^"\d+"$'},
    },
    "Location": {
        "description": "A 201's new resource in this API (`/api/v1/links/{code}`, "
        "`/api/v1/keys/{id}`, relative to this server); a redirect's target, with the "
        "visitor's query string appended when the link forwards it.",
        "schema": {"type": "string", "format": "uri-reference"},
    },
    "Cache-Control": {
        "description": "`private, max-age=90`: a browser keeps a permanent redirect only "
        "briefly, so that an edit, an expiry or a visit cap takes effect.",
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "Seconds to wait before retrying: until the rate limit allows the "
        "request again (429); 1 while the Idempotency-Key is in flight (409) or the "
        "database does not answer (503).",
        "schema": {"type": "integer", "minimum": 1},
    },
    "RateLimit": {
        "description": "The policy checked, its remaining quota `r` and the seconds `t` until "
        'it allows a request again (IETF RateLimit draft), e.g. `"api";r=37;t=12`. '
        "Sent when the request was counted against a rate limit.",
        "schema": {"type": "string"},
    },
    "RateLimit-Policy": {
        "description": 'The policy checked: `q` requests per `w` seconds, e.g. `"api";q=120;w=60`.',
        "schema": {"type": "string"},
    },
    "WWW-Authenticate": {
        "description": "`Bearer`: send an API key as `Authorization: Bearer <key>` (or "
        "sign in for a session cookie).",
        "schema": {"type": "string"},
    },
    "Set-Cookie": {
        "description": "The session cookie (`kurz_session`, or `__Host-kurz_session` when "
        "KURZ_BASE_URL is https): HttpOnly, SameSite=Lax, Path=/, Secure over https, "
        "Max-Age KURZ_SESSION_ABSOLUTE_TTL; or its removal (Max-Age=0) on sign-out.",
        "schema": {"type": "string"},
    },
    "X-CSRF-Token": {
        "description": "The new session's CSRF token: send it back as `X-CSRF-Token` "
        "with every request that may change something (docs/accounts.md).",
        "schema": {"type": "string"},
    },
    "Idempotent-Replayed": {
        "description": "`true` on the stored answer to an earlier request with the same "
        "Idempotency-Key: nothing ran again.",
        "schema": {"type": "string", "enum": ["true"]},
    },
}

# The RateLimit fields, on every answer of a route that checks a policy before it runs.
_RATE_LIMIT_FIELDS = ("RateLimit", "RateLimit-Policy")


def _refs(names: Collection[str]) -> dict[str, Any]:
    unknown = set(names) - set(HEADERS)
    if unknown:
        raise KeyError(f"no such header in HEADERS: {sorted(unknown)}")
    return {name: {"$ref": _HEADERS + name} for name in names}


def answer(description: str, *headers: str) -> dict[str, Any]:
    """A response: what it means on its route, and the HEADERS it may carry."""
    entry: dict[str, Any] = {"description": description}
    if headers:
        entry["headers"] = _refs(headers)
    return entry


def problem(description: str, *headers: str, html: bool = False) -> dict[str, Any]:
    """An error response: problem+json, and a small HTML page for browsers if `html`."""
    entry = answer(description, *headers)
    entry["content"] = {PROBLEM_JSON: {"schema": {"$ref": _SCHEMAS + "ProblemDetails"}}}
    if html:
        entry["content"]["text/html"] = {"schema": {"type": "string"}}
    return entry


_BUG: Answers = {500: problem("A bug in kurz; it is logged with its traceback")}


def responses(*groups: Answers, limited: bool = False, replayed: Iterable[int] = ()) -> Responses:
    """A route's answers: `groups` (no status in two of them), and a bug's 500.

    `limited`: a rate-limit policy is checked before the route runs, so that any answer
    may carry the RateLimit fields. `replayed`: the statuses an Idempotency-Key retry
    may get again from the store, marked Idempotent-Replayed.
    """
    merged: Responses = {}
    for group in (_BUG, *groups):
        for status, entry in group.items():
            if status in merged:
                raise ValueError(f"status {status} is declared twice")
            merged[status] = {**entry, "headers": dict(entry.get("headers", {}))}
    for status in replayed:
        merged[status]["headers"].update(_refs(["Idempotent-Replayed"]))
    if limited:
        for entry in merged.values():
            entry["headers"].update(_refs(_RATE_LIMIT_FIELDS))
    for entry in merged.values():
        if not entry["headers"]:
            del entry["headers"]
    return merged


def required_header(name: str, description: str) -> dict[str, Any]:
    """A header parameter documented as required, for a route that answers its absence
    itself (a 428, say) rather than with FastAPI's 422."""
    return {
        "name": name,
        "in": "header",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


# Every route behind an API key or a session: the check reads the database, and counts
# the call against the caller's `api` policy or, for a wrong key, the client's `auth-fail`.
AUTHENTICATED: Answers = {
    401: problem(
        "No API key or session cookie, or an unknown, revoked or expired key, or an ended session",
        "WWW-Authenticate",
    ),
    429: problem(
        "The caller's `api` rate limit is used up, or the client's `auth-fail` limit after "
        "wrong keys (or, checking a password, `signin-ip` or `signin-account`)",
        "Retry-After",
    ),
    503: problem("The database does not answer; nothing was changed", "Retry-After"),
}
NOT_FOUND: Answers = {404: problem("No such link, or not the caller's")}
TOO_LARGE: Answers = {413: problem("The body is over KURZ_MAX_BODY_BYTES")}


def needs_scope(scope: str) -> Answers:
    """A route that needs `scope`: a key without it (or whose user's role lacks it) is
    refused before the route runs."""
    return {403: problem(f"The key lacks the `{scope}` scope (`insufficient-scope`)")}


# Methods that may change something: made with a session cookie, they need its CSRF
# token (kurz.auth.cookies), so every such operation that authenticates may answer 403.
_WRITES = frozenset({"post", "put", "patch", "delete"})
_CSRF_FAILED = (
    "Called with a session cookie, without the session's CSRF token (`X-CSRF-Token`) "
    "or with a stale one (`csrf-failed`)"
)


def _with_csrf(operation: dict[str, Any]) -> None:
    """Declare a session write's 403 `csrf-failed` (beside any 403 of the route's own).

    The token is checked after the call is counted, so a limited route's 403 carries
    the RateLimit fields as its 401 does.
    """
    responses = operation["responses"]
    found = responses.get("403")
    if found is None:
        entry = problem(_CSRF_FAILED)
        limited = {
            name: ref
            for name, ref in responses["401"].get("headers", {}).items()
            if name in _RATE_LIMIT_FIELDS
        }
        if limited:
            entry["headers"] = limited
        responses["403"] = entry
    else:
        found["description"] += f"; or: {_CSRF_FAILED[0].lower()}{_CSRF_FAILED[1:]}"


def _fastapis_422(entry: dict[str, Any] | None) -> bool:
    schema = (entry or {}).get("content", {}).get("application/json", {}).get("schema")
    return bool(schema == {"$ref": _SCHEMAS + "HTTPValidationError"})


def complete(document: dict[str, Any]) -> dict[str, Any]:
    """FastAPI's document, with kurz's schemas and headers, without FastAPI's 422, and
    with the CSRF 403 of every write that takes credentials.

    FastAPI documents a 422 of its own shape for any route with parameters; kurz's
    routes declare theirs, as problem+json, where one can occur.
    """
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    schemas.update(copy.deepcopy(SCHEMAS))
    components["headers"] = copy.deepcopy(HEADERS)
    for item in document["paths"].values():
        for method, operation in item.items():
            if _fastapis_422(operation["responses"].get("422")):
                del operation["responses"]["422"]
            if method in _WRITES and operation.get("security"):
                _with_csrf(operation)
    return document
