"""kurz.grpc.errors: every REST problem type as a gRPC status with google.rpc details."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from kurz.errors import Problem, invalid
from kurz.grpc.errors import PROTO_FIELDS, RpcError, code_of, reason_of, status_of
from kurz.grpc.kurz.v1 import links_pb2 as pb
from kurz.idempotency.record import problem_json, replayed_problem
from kurz.idempotency.store import in_flight, reused
from kurz.limits import too_many_requests
from kurz.ratelimit import MemoryLimiter, parse_policy
from tests.support import FakeClock

DOCS = Path(__file__).resolve().parents[3] / "docs"
Code = grpc.StatusCode

# Every problem type in docs/problems.md, with its HTTP status and the code a gRPC
# client gets for it. Types only REST can raise (a route's method, a body it cannot
# read, If-Match, /readyz) still map by their status, should a servicer ever raise them.
EXPECTED: dict[str, tuple[int, grpc.StatusCode]] = {
    "malformed-json": (400, Code.INVALID_ARGUMENT),
    "bad-request": (400, Code.INVALID_ARGUMENT),
    "malformed-if-match": (400, Code.INVALID_ARGUMENT),
    "idempotency-key-malformed": (400, Code.INVALID_ARGUMENT),
    "idempotency-key-required": (400, Code.INVALID_ARGUMENT),
    # REST's sessions only (gRPC takes keys), mapped by their status.
    "not-a-session": (400, Code.INVALID_ARGUMENT),
    "unauthorized": (401, Code.UNAUTHENTICATED),
    "sign-in-failed": (401, Code.UNAUTHENTICATED),
    "link-password-required": (401, Code.UNAUTHENTICATED),
    "link-password-wrong": (401, Code.UNAUTHENTICATED),
    "insufficient-scope": (403, Code.PERMISSION_DENIED),
    "csrf-failed": (403, Code.PERMISSION_DENIED),
    "proxy-key-required": (403, Code.PERMISSION_DENIED),
    # REST only (/api/v1/keys), mapped by their status should gRPC ever raise them.
    "scope-exceeds-role": (403, Code.PERMISSION_DENIED),
    "scope-exceeds-key": (403, Code.PERMISSION_DENIED),
    "user-not-found": (404, Code.NOT_FOUND),
    "not-found": (404, Code.NOT_FOUND),
    "link-not-found": (404, Code.NOT_FOUND),
    # No gRPC counterpart (gRPC answers an unknown method UNIMPLEMENTED itself): the
    # table has no 405, so it falls to INTERNAL.
    "method-not-allowed": (405, Code.INTERNAL),
    "alias-taken": (409, Code.ALREADY_EXISTS),
    "idempotency-key-in-use": (409, Code.ABORTED),
    # Users are not in the gRPC API (yet); should a servicer raise these, they map so.
    "email-taken": (409, Code.ALREADY_EXISTS),
    "last-admin": (409, Code.FAILED_PRECONDITION),
    "cannot-delete-self": (409, Code.FAILED_PRECONDITION),
    # Domains are REST's only (admins'); mapped so should a servicer raise them.
    "domain-taken": (409, Code.ALREADY_EXISTS),
    "domain-in-use": (409, Code.FAILED_PRECONDITION),
    # Webhooks are REST's only; mapped so should a servicer raise them.
    "too-many-webhooks": (409, Code.RESOURCE_EXHAUSTED),
    "delivery-pending": (409, Code.FAILED_PRECONDITION),
    "webhooks-not-configured": (503, Code.UNAVAILABLE),
    "link-not-active": (410, Code.NOT_FOUND),
    "link-expired": (410, Code.NOT_FOUND),
    "link-visits-exhausted": (410, Code.NOT_FOUND),
    "precondition-failed": (412, Code.FAILED_PRECONDITION),
    "payload-too-large": (413, Code.RESOURCE_EXHAUSTED),
    # REST only (an import's body); the table has no 415, so it falls to INTERNAL.
    "unsupported-media-type": (415, Code.INTERNAL),
    "request-timeout": (408, Code.DEADLINE_EXCEEDED),
    "request-header-fields-too-large": (431, Code.RESOURCE_EXHAUSTED),
    "validation-error": (422, Code.INVALID_ARGUMENT),
    "idempotency-key-reused": (422, Code.INVALID_ARGUMENT),
    "precondition-required": (428, Code.FAILED_PRECONDITION),
    "rate-limit/api": (429, Code.RESOURCE_EXHAUSTED),
    "rate-limit/redirect": (429, Code.RESOURCE_EXHAUSTED),
    "rate-limit/auth-fail": (429, Code.RESOURCE_EXHAUSTED),
    "rate-limit/signin-ip": (429, Code.RESOURCE_EXHAUSTED),
    "rate-limit/signin-account": (429, Code.RESOURCE_EXHAUSTED),
    "rate-limit/link-password": (429, Code.RESOURCE_EXHAUSTED),
    "not-ready": (503, Code.UNAVAILABLE),
    "database-unavailable": (503, Code.UNAVAILABLE),
    "database-busy": (503, Code.UNAVAILABLE),
    "internal-error": (500, Code.INTERNAL),
}
POLICIES = ("api", "redirect", "auth-fail", "signin-ip", "signin-account", "link-password")
CODES = {code.name: code for code in grpc.StatusCode}


def expanded(slug: str) -> list[str]:
    """A documented type; rate-limit/{policy} as one type per policy."""
    if slug == "rate-limit/{policy}":
        return [f"rate-limit/{name}" for name in POLICIES]
    return [slug]


def documented_problems() -> dict[str, int]:
    """docs/problems.md's table: type -> status, rate-limit/{policy} once per policy."""
    rows = re.findall(
        r"^\| `/problems/([^`]+)` \| (\d{3}) \|", (DOCS / "problems.md").read_text(), re.M
    )
    return {each: int(status) for slug, status in rows for each in expanded(slug)}


def documented_codes() -> dict[str, tuple[int, str]]:
    """docs/grpc.md's error table: type -> (status, gRPC code name)."""
    text = (DOCS / "grpc.md").read_text()
    found: dict[str, tuple[int, str]] = {}
    for types, status, code in re.findall(r"^\| (`[^|]+) \| (\d{3}) \| `([A-Z_]+)`", text, re.M):
        for slug in re.findall(r"`([^`]+)`", types):
            found.update(dict.fromkeys(expanded(slug), (int(status), code)))
    return found


def problem(status: int, slug: str, **kwargs: Any) -> Problem:
    return Problem(status, slug, slug.replace("-", " ").title(), f"about {slug}", **kwargs)


def details(error: RpcError) -> dict[type[Any], Any]:
    """The status's details, unpacked, one per type (a second of a type fails)."""
    unpacked: dict[type[Any], Any] = {}
    for packed in error.details.details:
        kinds = [
            kind
            for kind in (
                error_details_pb2.ErrorInfo,
                error_details_pb2.BadRequest,
                error_details_pb2.RetryInfo,
            )
            if packed.Is(kind.DESCRIPTOR)
        ]
        assert len(kinds) == 1, packed.type_url
        assert kinds[0] not in unpacked
        unpacked[kinds[0]] = kinds[0]()
        packed.Unpack(unpacked[kinds[0]])
    return unpacked


def test_the_table_covers_every_documented_problem_type() -> None:
    documented = documented_problems()
    assert len(documented) >= 20  # the parse found the table
    assert {slug: status for slug, (status, _) in EXPECTED.items()} == documented


def test_docs_grpc_md_lists_the_codes_the_module_gives() -> None:
    listed = documented_codes()
    assert {"validation-error", "link-expired", "rate-limit/auth-fail"} <= set(listed)
    for slug, (status, name) in listed.items():
        assert EXPECTED[slug] == (status, CODES[name]), slug


@pytest.mark.parametrize(("slug", "status", "code"), [(s, *v) for s, v in EXPECTED.items()])
def test_each_problem_type_maps_to_its_code(slug: str, status: int, code: grpc.StatusCode) -> None:
    found = problem(status, slug)
    assert code_of(found) == code
    error = status_of(found)
    assert error.code == code
    assert (error.details.code, error.details.message) == (code.value[0], f"about {slug}")
    info = details(error)[error_details_pb2.ErrorInfo]
    assert (info.domain, info.reason) == ("kurz", reason_of(slug))
    assert dict(info.metadata) == {"type": f"/problems/{slug}", "http_status": str(status)}


def test_the_type_decides_where_the_status_is_ambiguous() -> None:
    assert code_of(in_flight()) == Code.ABORTED
    assert code_of(problem(409, "alias-taken")) == Code.ALREADY_EXISTS
    assert code_of(problem(409, "something-else")) == Code.ALREADY_EXISTS


@pytest.mark.parametrize("status", [418, 500, 502, 599])
def test_a_status_without_a_counterpart_is_internal(status: int) -> None:
    assert code_of(problem(status, "whatever")) == Code.INTERNAL


@pytest.mark.parametrize(
    ("slug", "reason"),
    [
        ("alias-taken", "ALIAS_TAKEN"),
        ("not-found", "NOT_FOUND"),
        ("link-visits-exhausted", "LINK_VISITS_EXHAUSTED"),
        ("rate-limit/auth-fail", "RATE_LIMIT_AUTH_FAIL"),
        ("unauthorized", "UNAUTHORIZED"),
    ],
)
def test_reason_is_the_type_in_upper_snake_case(slug: str, reason: str) -> None:
    assert reason_of(slug) == reason


def test_reasons_are_distinct_per_type() -> None:
    reasons = [reason_of(slug) for slug in EXPECTED]
    assert len(set(reasons)) == len(reasons)
    assert all(re.fullmatch(r"[A-Z][A-Z0-9_]*", reason) for reason in reasons)


def test_field_errors_become_violations_under_the_protos_names() -> None:
    fields = [
        "starts_at",
        "expires_at",
        "cursor",
        "limit",
        "from",
        "to",
        "url",
        "tags.3",
        "expires_at.x",
    ]
    errors = [{"field": field, "in": "body", "message": f"bad {field}"} for field in fields]
    error = status_of(Problem(422, "validation-error", "Validation Error", "…", errors=errors))
    assert error.code == Code.INVALID_ARGUMENT
    violations = details(error)[error_details_pb2.BadRequest].field_violations
    assert [(v.field, v.description) for v in violations] == [
        ("start_time", "bad starts_at"),
        ("expire_time", "bad expires_at"),
        ("page_token", "bad cursor"),
        ("page_size", "bad limit"),
        ("start_time", "bad from"),
        ("end_time", "bad to"),
        ("url", "bad url"),
        ("tags.3", "bad tags.3"),
        # Only the first part is a field of the request; what follows is within it.
        ("expire_time.x", "bad expires_at.x"),
    ]


def test_only_whole_field_names_are_renamed() -> None:
    error = status_of(invalid("limited", "no"))
    [violation] = details(error)[error_details_pb2.BadRequest].field_violations
    assert violation.field == "limited"
    error = status_of(invalid("tags.limit", "no"))
    [violation] = details(error)[error_details_pb2.BadRequest].field_violations
    assert violation.field == "tags.limit"


def test_renamed_fields_are_fields_of_the_proto() -> None:
    names = {
        field.name
        for message in (pb.CreateLinkRequest, pb.ListLinksRequest, pb.GetLinkStatsRequest)
        for field in message.DESCRIPTOR.fields
    }
    assert set(PROTO_FIELDS.values()) <= names
    assert not set(PROTO_FIELDS) & names


def test_without_errors_there_is_no_bad_request() -> None:
    found = details(status_of(problem(404, "not-found")))
    assert set(found) == {error_details_pb2.ErrorInfo}


def test_a_rate_limit_carries_retry_info_from_retry_after() -> None:
    limiter = MemoryLimiter(FakeClock())
    policy = parse_policy("api", "1/60s;burst=1")
    assert policy is not None
    assert limiter.check_now(policy, "key").allowed
    refused = limiter.check_now(policy, "key")
    assert not refused.allowed
    limited = too_many_requests(refused)
    error = status_of(limited)
    assert error.code == Code.RESOURCE_EXHAUSTED
    found = details(error)
    assert found[error_details_pb2.RetryInfo].retry_delay.seconds == int(
        limited.headers["Retry-After"]
    )
    assert found[error_details_pb2.RetryInfo].retry_delay.seconds >= 59
    assert found[error_details_pb2.ErrorInfo].reason == "RATE_LIMIT_API"


@pytest.mark.parametrize(
    ("retry_after", "seconds"),
    [("1", 1), ("120", 120), ("Wed, 21 Oct 2026 07:28:00 GMT", None), ("-1", None), (None, None)],
)
def test_retry_info_only_for_a_delay_in_seconds(
    retry_after: str | None, seconds: int | None
) -> None:
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    found = details(status_of(problem(503, "database-unavailable", headers=headers)))
    retry = found.get(error_details_pb2.RetryInfo)
    assert (None if retry is None else retry.retry_delay.seconds) == seconds


def test_in_flight_says_to_retry_shortly() -> None:
    found = details(status_of(in_flight()))
    assert found[error_details_pb2.RetryInfo].retry_delay.seconds == 1


def test_a_stale_version_carries_the_current_one() -> None:
    stale = problem(412, "precondition-failed", headers={"ETag": '"7"'})
    info = details(status_of(stale))[error_details_pb2.ErrorInfo]
    assert info.metadata["version"] == "7"
    assert info.metadata["http_status"] == "412"
    unversioned = details(status_of(problem(428, "precondition-required")))
    assert "version" not in unversioned[error_details_pb2.ErrorInfo].metadata


def test_trailers_hold_the_serialized_status() -> None:
    error = status_of(problem(404, "link-not-found"))
    [(key, value)] = error.trailers()
    assert key == "grpc-status-details-bin"
    assert status_pb2.Status.FromString(value) == error.details


ROUND_TRIPS = [
    problem(412, "precondition-failed", headers={"ETag": '"3"'}),
    invalid("expires_at", "must be in the future"),
    Problem(
        422,
        "validation-error",
        "Validation Error",
        "url: bad; tags.0: worse",
        errors=[
            {"field": "url", "in": "body", "message": "bad"},
            {"field": "tags.0", "in": "body", "message": "worse"},
        ],
    ),
    problem(409, "alias-taken"),
    problem(404, "not-found"),
    reused(),
]


@pytest.mark.parametrize("original", ROUND_TRIPS, ids=lambda p: p.slug)
def test_a_recorded_problem_is_the_problem_it_was_made_from(original: Problem) -> None:
    back = replayed_problem(original.status, problem_json(original))
    assert (back.status, back.slug, back.title, back.detail) == (
        original.status, original.slug, original.title, original.detail
    )  # fmt: skip
    assert back.errors == original.errors
    assert back.headers == original.headers
    again, first = status_of(back), status_of(original)
    assert (again.code, again.message) == (first.code, first.message)
    assert again.details == first.details
