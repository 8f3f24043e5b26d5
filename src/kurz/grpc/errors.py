"""Problems as gRPC statuses: a code, the detail, and google.rpc details (docs/grpc.md).

The same Problem a REST route raises becomes, here, the status code its HTTP status
(or, where that is ambiguous, its type) maps to, with the details a gRPC client
knows how to read: ErrorInfo (reason and the REST problem type), BadRequest (one
violation per field) and RetryInfo (when to try again).
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from kurz.errors import Problem

DOMAIN = "kurz"
# Where gRPC carries a google.rpc.Status with details, beside the code and message.
DETAILS_KEY = "grpc-status-details-bin"

_BY_HTTP_STATUS = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    # HTTP/1.1's own (a request head too slow or too large): gRPC never meets them.
    408: grpc.StatusCode.DEADLINE_EXCEEDED,
    409: grpc.StatusCode.ALREADY_EXISTS,
    # gRPC has no "gone": the link is not there to follow any more.
    410: grpc.StatusCode.NOT_FOUND,
    412: grpc.StatusCode.FAILED_PRECONDITION,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    431: grpc.StatusCode.RESOURCE_EXHAUSTED,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    428: grpc.StatusCode.FAILED_PRECONDITION,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
}
# Where one HTTP status covers cases a gRPC client must tell apart.
_BY_TYPE = {
    # Another request with the key is running: retry the whole call later.
    "idempotency-key-in-use": grpc.StatusCode.ABORTED,
    # Not a conflict with something that exists: the state forbids the change.
    "last-admin": grpc.StatusCode.FAILED_PRECONDITION,
    "cannot-delete-self": grpc.StatusCode.FAILED_PRECONDITION,
    "domain-in-use": grpc.StatusCode.FAILED_PRECONDITION,
    "delivery-pending": grpc.StatusCode.FAILED_PRECONDITION,
    # A quota, not a conflict.
    "too-many-webhooks": grpc.StatusCode.RESOURCE_EXHAUSTED,
}
# REST's names for fields that the proto names differently (from and to: the stats range).
PROTO_FIELDS = {
    "starts_at": "start_time",
    "valid_from": "start_time",
    "expires_at": "expire_time",
    "cursor": "page_token",
    "limit": "page_size",
    "q": "query",
    "sort": "order_by",
    "from": "start_time",
    "to": "end_time",
}


@dataclass(frozen=True, slots=True)
class RpcError:
    """What an RPC answers for a Problem: its code, message and status details."""

    code: grpc.StatusCode
    message: str
    details: status_pb2.Status

    def trailers(self) -> tuple[tuple[str, bytes], ...]:
        return ((DETAILS_KEY, self.details.SerializeToString()),)


def code_of(problem: Problem) -> grpc.StatusCode:
    return _BY_TYPE.get(problem.slug) or _BY_HTTP_STATUS.get(
        problem.status, grpc.StatusCode.INTERNAL
    )


def reason_of(slug: str) -> str:
    """ErrorInfo's reason: the problem type in UPPER_SNAKE_CASE (alias-taken: ALIAS_TAKEN)."""
    return slug.upper().replace("-", "_").replace("/", "_")


def status_of(problem: Problem) -> RpcError:
    code = code_of(problem)
    metadata = {"type": f"/problems/{problem.slug}", "http_status": str(problem.status)}
    etag = problem.headers.get("ETag")
    if etag is not None:
        metadata["version"] = etag.strip('"')
    reason = reason_of(problem.slug)
    details: list[Message] = [
        error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=metadata)
    ]
    if problem.errors:
        violations = [
            error_details_pb2.BadRequest.FieldViolation(
                field=_proto_field(str(error["field"])), description=str(error["message"])
            )
            for error in problem.errors
        ]
        details.append(error_details_pb2.BadRequest(field_violations=violations))
    retry = problem.headers.get("Retry-After")
    if retry is not None and retry.isdigit():
        delay = duration_pb2.Duration(seconds=int(retry))
        details.append(error_details_pb2.RetryInfo(retry_delay=delay))
    packed = []
    for detail in details:
        wrapped = any_pb2.Any()
        wrapped.Pack(detail)
        packed.append(wrapped)
    rich = status_pb2.Status(code=code.value[0], message=problem.detail, details=packed)
    return RpcError(code, problem.detail, rich)


# Within rules[i].conditions[j]: REST's names that the proto's Condition spells otherwise.
CONDITION_FIELDS = {"in": "values", "from": "start_time", "until": "end_time"}


def _proto_field(field: str) -> str:
    head, dot, rest = field.partition(".")
    if head == "rules" and rest:
        rest = ".".join(CONDITION_FIELDS.get(part, part) for part in rest.split("."))
    return PROTO_FIELDS.get(head, head) + dot + rest
