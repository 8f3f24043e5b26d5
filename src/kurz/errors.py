"""RFC 9457 problem details: the one shape every kurz error takes, in no protocol's terms.

HTTP renders them in kurz.httperrors, gRPC in kurz.grpc.errors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

PROBLEM_JSON = "application/problem+json"

# Problem types are relative references, resolved against kurz's own origin and
# described in docs/problems.md; `about:blank` is used where the status says it all.
_TYPE_BASE = "/problems/"


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
