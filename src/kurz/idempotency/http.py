"""Reading a request's Idempotency-Key: the glue between HTTP and the store."""

from __future__ import annotations

from starlette.requests import Request

from kurz.errors import Problem
from kurz.idempotency.key import MAX_LENGTH, MalformedKey, fingerprint, parse_key
from kurz.idempotency.store import Keyed

HEADER = "idempotency-key"
EXAMPLE = '"8e03978e-40d5-43e8-bc93-6894a57f9324"'


async def keyed_request(
    request: Request, caller: str, *, required: bool = False, extra: tuple[str, ...] = ()
) -> Keyed | None:
    """The request's key, scoped to `caller` and the route; None when it sent none.

    `extra` is anything besides the body that makes two requests different (a PATCH's
    If-Match, say): it is folded into the fingerprint.
    """
    lines = request.headers.getlist(HEADER)
    return key_for(
        lines,
        caller=caller,
        method=request.method,
        path=request.url.path,
        body=await request.body() if lines else b"",
        required=required,
        extra=extra,
    )


def key_for(
    values: list[str],
    *,
    caller: str,
    method: str,
    path: str,
    body: bytes,
    required: bool = False,
    extra: tuple[str, ...] = (),
) -> Keyed | None:
    """The key in `values` (the header's lines, or gRPC's metadata entries) for a request
    to `method` `path` with `body`; None when there is none and none is required."""
    if not values:
        if required:
            raise Problem(
                400,
                "idempotency-key-required",
                "Idempotency Key Required",
                f"This server requires an Idempotency-Key on every {method}, "
                f"e.g. Idempotency-Key: {EXAMPLE}.",
            )
        return None
    try:
        key = parse_key(", ".join(values))
    except MalformedKey as exc:
        raise Problem(
            400,
            "idempotency-key-malformed",
            "Malformed Idempotency Key",
            f"Idempotency-Key must be one quoted string of 1 to {MAX_LENGTH} printable "
            f"ASCII characters, e.g. Idempotency-Key: {EXAMPLE}; {exc}.",
        ) from None
    return Keyed(
        caller=caller, method=method, path=path, key=key, fingerprint=fingerprint(body, *extra)
    )
