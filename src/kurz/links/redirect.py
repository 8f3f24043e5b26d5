"""Visits over HTTP: the fast path in front of FastAPI, and the `follow` route.

Both render what the redirect pipeline (kurz.links.visit) decides. KurzApp answers an
L1 hit that passes the verdict before FastAPI sees the request, so a repeat hit costs
a dict lookup and two ASGI messages (docs/redirects.md); it runs the whole pipeline
for an L1 miss too (through L2 and SQL, ADR 0007), and leaves only a refusal to the
`follow` route, which renders it as a page or problem+json.
"""

from __future__ import annotations

import html
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.responses import Response
from starlette.types import Scope, Send

from kurz.deps import part
from kurz.errors import Problem
from kurz.httperrors import response
from kurz.links import pages
from kurz.links.gates import CHALLENGE
from kurz.links.target import Target
from kurz.links.visit import Outcome, Visits
from kurz.openapi import TOO_LARGE, answer, problem, responses
from kurz.ratelimit import Decision, carries_fields, with_fields

# Where KurzApp leaves the outcome it decided but did not answer (a refusal), so that
# the `follow` route renders it instead of deciding the visit a second time.
OUTCOME = "kurz.visit"


async def send_redirect(
    target: Target, scope: Scope, send: Send, decision: Decision | None = None, at: int = 0
) -> None:
    """The redirect to `target.urls[at]`, with the RateLimit fields when a policy was
    checked and the client is near its limit (ADR 0003)."""
    headers = target.headers_for(scope["query_string"], at)
    if decision is not None and carries_fields(target.status, decision):
        headers = with_fields(headers, decision)
    await send({"type": "http.response.start", "status": target.status, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


def _elsewhere_headers(location: str) -> list[tuple[bytes, bytes]]:
    # A fallback or a domain's redirect is checked as any target is (an absolute URL).
    return [(b"location", location.encode("ascii")), (b"content-length", b"0")]


async def send_elsewhere(outcome: Outcome, scope: Scope, send: Send) -> None:
    """A redirect (302) to an outcome's `location`, which no link is the target of."""
    assert outcome.location is not None
    headers = _elsewhere_headers(outcome.location)
    await send({"type": "http.response.start", "status": 302, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · kurz</title>
<style>
body{{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:15vh auto;padding:0 1rem}}
h1{{font-size:1.5rem}}
</style></head>
<body><h1>{title}</h1><p>{detail}</p></body></html>
"""


# The refusals a browser answers with the password form.
_ASKS_PASSWORD = {
    "link-password-required": "",
    "link-password-wrong": "That is not the password; try again.",
}


def _answer(request: Request, problem: Problem) -> Response:
    """A small HTML page for a browser (a password link's: its form), problem+json for
    anything else."""
    if "text/html" in request.headers.get("accept", ""):
        if problem.slug in _ASKS_PASSWORD:
            return pages.password_form(
                request, problem.status, error=_ASKS_PASSWORD[problem.slug], headers=CHALLENGE
            )
        page = _PAGE.format(title=html.escape(problem.title), detail=html.escape(problem.detail))
        return HTMLResponse(page, status_code=problem.status, headers=problem.headers)
    return response(problem, request.url.path)


def render(outcome: Outcome, request: Request) -> Response:
    """The HTTP answer to a decided visit."""
    if outcome.target is not None:
        response = Response(status_code=outcome.target.status)
        response.raw_headers = outcome.target.headers_for(request.scope["query_string"], outcome.at)
    elif outcome.location is not None:
        response = Response(status_code=302)
        response.raw_headers = _elsewhere_headers(outcome.location)
    elif outcome.preview is not None:
        response = pages.preview(request, outcome.preview)
    else:
        assert outcome.refusal is not None
        response = _answer(request, outcome.refusal)
    decision = outcome.limit
    if decision is not None and carries_fields(response.status_code, decision):
        response.raw_headers = with_fields(response.raw_headers, decision)
    return response


router = APIRouter(tags=["redirect"])
VisitsDep = Annotated[Visits, part("visits")]


async def follow(code: str, request: Request, visits: VisitsDep) -> Response:
    outcome = request.scope.pop(OUTCOME, None)
    if outcome is None:
        # A path KurzApp did not take for a code ("/a.b"): the pipeline answers it.
        visitor = visits.visitor(request.scope)
        outcome = await visits.decide(
            code,
            visitor,
            domain=visits.domain(request.scope),
            peek=request.method == "HEAD",
            counted=False,
        )
    return render(outcome, request)


# A form's fields at most: the password is the one read.
_MAX_FIELDS = 20


async def _password(request: Request) -> str:
    """The `password` field of the posted form (application/x-www-form-urlencoded);
    empty when there is none, which no link's password can be."""
    body = (await request.body()).decode("utf-8", errors="replace")
    try:
        pairs = parse_qsl(body, keep_blank_values=True, max_num_fields=_MAX_FIELDS)
    except ValueError:
        return ""
    return next((value for name, value in pairs if name == "password"), "")


async def unlock(code: str, request: Request, visits: VisitsDep) -> Response:
    """A password link's form, posted: with the right password, 303 to the target."""
    password = await _password(request)
    visitor = visits.visitor(request.scope)
    outcome = await visits.decide(
        code,
        visitor,
        domain=visits.domain(request.scope),
        peek=False,
        counted=False,
        password=password,
    )
    target = outcome.target
    if target is None:
        return render(outcome, request)
    # 303: the browser GETs the target, whatever the link's own status says.
    location = target.location(request.scope["query_string"], outcome.at).encode("ascii")
    response = Response(status_code=303)
    response.raw_headers = [(b"location", location), (b"cache-control", b"no-store")]
    decision = outcome.limit
    if decision is not None and carries_fields(303, decision):
        response.raw_headers = with_fields(response.raw_headers, decision)
    return response


def _page(description: str, *headers: str) -> dict[str, Any]:
    entry = answer(description, *headers)
    entry["content"] = {"text/html": {"schema": {"type": "string"}}}
    return entry


_FOLLOW_RESPONSES = responses(
    {
        301: answer("Moved permanently", "Location", "Cache-Control"),
        302: answer("Found (the default)", "Location"),
        307: answer("Temporary redirect", "Location"),
        308: answer("Permanent redirect", "Location", "Cache-Control"),
        200: _page(
            "A link-preview bot's page for a link with a visit cap, a password or preview "
            "fields: Open Graph tags, never the target (docs/passwords-and-bots.md)",
            "Cache-Control",
        ),
        401: problem(
            "A password link: browsers get its form, others problem+json",
            "WWW-Authenticate",
            "Cache-Control",
            html=True,
        ),
        404: problem("No such link", html=True),
        # Worded for any rule of kurz.links.rules, so that a new one need not change it.
        410: problem(
            "A rule of the link, or its visit cap, refused the visit; the problem `type` "
            "says which (docs/problems.md)",
            html=True,
        ),
        429: problem("The client's `redirect` rate limit is used up", "Retry-After", html=True),
        503: problem("The database does not answer", "Retry-After", html=True),
    },
    limited=True,
)

# "/{code}/" too, unlisted: as at Bitly and Shlink, a short link pasted with a slash
# after it still works.
for _path, _method, _operation_id in [
    ("/{code}", "GET", "followLink"),
    ("/{code}", "HEAD", "followLinkHead"),
    ("/{code}/", "GET", "followLinkSlash"),
    ("/{code}/", "HEAD", "followLinkSlashHead"),
]:
    router.add_api_route(
        _path,
        follow,
        methods=[_method],
        operation_id=_operation_id,
        include_in_schema=not _path.endswith("/"),
        summary="Follow a short link",
        description=(
            "Redirects with the link's status (301, 302, 307 or 308) and `Location`. "
            "Browsers (Accept: text/html) get a small HTML page for 404, 410, 429 and 503; "
            "other clients get problem+json. HEAD answers as GET does without using up a "
            "visit."
        ),
        status_code=302,
        response_class=Response,
        responses=_FOLLOW_RESPONSES,
    )

_UNLOCK_RESPONSES = responses(
    {
        400: problem("Malformed Content-Length"),
        303: answer("The password is right: on to the link's target", "Location", "Cache-Control"),
        302: answer(
            "The visit is refused (expired, used up, no such link) and the link has a "
            "fallback for it, or its domain a redirect (docs/domains.md)",
            "Location",
        ),
        401: problem(
            "The password is wrong (a browser gets the form again)",
            "WWW-Authenticate",
            "Cache-Control",
            html=True,
        ),
        404: problem("No such link", html=True),
        410: problem("A rule of the link, or its visit cap, refused the visit", html=True),
        429: problem(
            "Too many wrong passwords for this link from this address "
            "(`link-password`), or the `redirect` limit",
            "Retry-After",
            html=True,
        ),
        503: problem("The database does not answer", "Retry-After", html=True),
    },
    TOO_LARGE,
    limited=True,
)

for _path, _operation_id in [("/{code}", "unlockLink"), ("/{code}/", "unlockLinkSlash")]:
    router.add_api_route(
        _path,
        unlock,
        methods=["POST"],
        operation_id=_operation_id,
        include_in_schema=not _path.endswith("/"),
        summary="Give a password link's password",
        description=(
            "The form a password link shows posts here: `password` as "
            "application/x-www-form-urlencoded. The right password gets 303 to the target "
            "(and uses a visit of a capped link); wrong ones are limited per link and "
            "client address."
        ),
        status_code=303,
        response_class=Response,
        responses=_UNLOCK_RESPONSES,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": {
                            "type": "object",
                            "required": ["password"],
                            "properties": {"password": {"type": "string"}},
                        }
                    }
                },
            }
        },
    )
