"""The Idempotency-Key header (and gRPC's metadata entry of that name): its key, and
how REST says that an answer is a replay."""

from __future__ import annotations

from kurz.errors import Problem
from kurz.idempotency.key import MAX_LENGTH, MalformedKey, parse_key

HEADER = "idempotency-key"
REPLAYED = "Idempotent-Replayed"
EXAMPLE = '"8e03978e-40d5-43e8-bc93-6894a57f9324"'


def key_for(values: list[str], *, required: bool = False) -> str | None:
    """The key in `values` (the header's lines, or gRPC's metadata entries); None when
    there is none and none is required (only a create may require one)."""
    if not values:
        if required:
            raise Problem(
                400,
                "idempotency-key-required",
                "Idempotency Key Required",
                "This server requires an Idempotency-Key on every POST, "
                f"e.g. Idempotency-Key: {EXAMPLE}.",
            )
        return None
    try:
        return parse_key(", ".join(values))
    except MalformedKey as exc:
        raise Problem(
            400,
            "idempotency-key-malformed",
            "Malformed Idempotency Key",
            f"Idempotency-Key must be one quoted string of 1 to {MAX_LENGTH} printable "
            f"ASCII characters, e.g. Idempotency-Key: {EXAMPLE}; {exc}.",
        ) from None
