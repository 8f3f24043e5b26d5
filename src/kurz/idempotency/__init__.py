"""Idempotency-Key handling: a retried write is answered from its stored response."""

from kurz.idempotency.http import key_for, keyed_request
from kurz.idempotency.key import MAX_LENGTH, MalformedKey, fingerprint, parse_key
from kurz.idempotency.store import REPLAYED, Idempotency, Keyed, Stored

__all__ = [
    "MAX_LENGTH",
    "REPLAYED",
    "Idempotency",
    "Keyed",
    "MalformedKey",
    "Stored",
    "fingerprint",
    "key_for",
    "keyed_request",
    "parse_key",
]
