"""Idempotency-Key handling: a retried write is answered from its record, not run again."""

from kurz.idempotency.http import REPLAYED, key_for
from kurz.idempotency.key import MAX_LENGTH, MalformedKey, fingerprint, parse_key
from kurz.idempotency.record import Done, Keyed, ReplayedProblem
from kurz.idempotency.store import Idempotency

__all__ = [
    "MAX_LENGTH",
    "REPLAYED",
    "Done",
    "Idempotency",
    "Keyed",
    "MalformedKey",
    "ReplayedProblem",
    "fingerprint",
    "key_for",
    "parse_key",
]
