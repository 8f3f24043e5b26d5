"""Problems over HTTP: the application/problem+json response, and FastAPI's handlers
that turn every error a route raises into one."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from kurz.errors import PROBLEM_JSON, Problem, validation_problem


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_JSON


def response(problem: Problem, instance: str | None = None) -> ProblemResponse:
    """`problem` as problem+json, with its headers; `instance` is the request's path."""
    return ProblemResponse(problem.body(instance), problem.status, headers=problem.headers)


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


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if any(error.get("type") == "json_invalid" for error in exc.errors()):
        problem = Problem(400, "malformed-json", "Malformed JSON", "The body is not valid JSON.")
        return response(problem, request.url.path)
    return response(validation_problem(exc.errors()), request.url.path)


async def _on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return response(exc, request.url.path)


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    slug, title = _STATUS_PROBLEMS.get(exc.status_code, ("about:blank", "Error"))
    problem = Problem(exc.status_code, slug, title, exc.detail or title, headers=exc.headers)
    return response(problem, request.url.path)


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    # Starlette re-raises the exception after this answer, so the server logs its
    # traceback once; logging it here too would log every 500 twice.
    problem = Problem(
        500, "internal-error", "Internal Server Error", "An unexpected error occurred."
    )
    return response(problem, request.url.path)


def install(app: FastAPI) -> None:
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(Exception, _on_unexpected)
