"""Idempotency-Key handling: a retried write is answered from its record, not run again."""

from kurz.idempotency.http import REPLAYED, key_for
from kurz.idempotency.key import MAX_LENGTH, MalformedKey, fingerprint, parse_key
from kurz.idempotency.record import Done, Keyed, ReplayedProblem
from kurz.idempotency.steps import Recorded, Steps
from kurz.idempotency.store import IN_FLIGHT, Idempotency

__all__ = [
    "IN_FLIGHT",
    "MAX_LENGTH",
    "REPLAYED",
    "Done",
    "Idempotency",
    "Keyed",
    "MalformedKey",
    "Recorded",
    "ReplayedProblem",
    "Steps",
    "fingerprint",
    "key_for",
    "parse_key",
]
