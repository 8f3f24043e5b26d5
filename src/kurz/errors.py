"""RFC 9457 problem details: the one shape every kurz error takes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

PROBLEM_JSON = "application/problem+json"

# Problem types are relative references, resolved against kurz's own origin and
# described in docs/problems.md; `about:blank` is used where the status says it all.
_TYPE_BASE = "/problems/"


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_JSON


class Problem(Exception):
    """An error the client can act on, rendered as application/problem+json."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        *,
        errors: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.errors = errors
        self.headers = dict(headers or {})
        # RFC 9457 extension members, e.g. the RateLimit draft's "violated-policies".
        self.extensions = dict(extensions or {})

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.slug if ":" in self.slug else _TYPE_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance is not None:
            body["instance"] = instance
        if self.errors is not None:
            body["errors"] = list(self.errors)
        body.update(self.extensions)
        return body

    def response(self, instance: str | None = None) -> ProblemResponse:
        return ProblemResponse(self.body(instance), self.status, headers=self.headers)


def not_found(detail: str) -> Problem:
    return Problem(404, "not-found", "Not Found", detail)


def invalid(field: str, message: str, *, location: str = "body") -> Problem:
    """A 422 for one failing field, in the same shape as schema validation errors."""
    return Problem(
        422,
        "validation-error",
        "Validation Error",
        f"{field}: {message}",
        errors=[{"field": field, "in": location, "message": message}],
    )


_STATUS_PROBLEMS: dict[int, tuple[str, str]] = {
    400: ("bad-request", "Bad Request"),
    401: ("unauthorized", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not Found"),
    405: ("method-not-allowed", "Method Not Allowed"),
    406: ("not-acceptable", "Not Acceptable"),
    413: ("payload-too-large", "Payload Too Large"),
    415: ("unsupported-media-type", "Unsupported Media Type"),
}


def _field_errors(found: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Pydantic's errors as kurz reports them: field, where it was, and a message.

    Each error's `loc` starts with where the value came from (body, query, ...).
    """
    errors = []
    for error in found:
        loc = [str(part) for part in error.get("loc", ())]
        location = loc[0] if loc else "body"
        message = str(error.get("msg", "invalid"))
        # Pydantic prefixes messages raised by our validators; the prefix helps no one.
        message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        errors.append({"field": ".".join(loc[1:]) or location, "in": location, "message": message})
    return errors


def validation_problem(found: Sequence[Mapping[str, Any]]) -> Problem:
    """The 422 for pydantic's errors: REST's for a request, gRPC's for a message."""
    errors = _field_errors(found)
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return Problem(422, "validation-error", "Validation Error", detail, errors=errors)


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if any(error.get("type") == "json_invalid" for error in exc.errors()):
        problem = Problem(400, "malformed-json", "Malformed JSON", "The body is not valid JSON.")
        return problem.response(request.url.path)
    return validation_problem(exc.errors()).response(request.url.path)


async def _on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return exc.response(request.url.path)


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    slug, title = _STATUS_PROBLEMS.get(exc.status_code, ("about:blank", "Error"))
    problem = Problem(exc.status_code, slug, title, exc.detail or title, headers=exc.headers)
    return problem.response(request.url.path)


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    # Starlette re-raises the exception after this answer, so the server logs its
    # traceback once; logging it here too would log every 500 twice.
    problem = Problem(
        500, "internal-error", "Internal Server Error", "An unexpected error occurred."
    )
    return problem.response(request.url.path)


def install(app: FastAPI) -> None:
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(Exception, _on_unexpected)
