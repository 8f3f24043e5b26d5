"""Short codes: random, unguessable, unique by the database's unique index.

Why random with retry, and not a counter or ranges: docs/decisions/0001-short-codes.md.
"""

from __future__ import annotations

import re
import secrets
import string

from kurz.links.urls import RESERVED

ALPHABET = string.digits + string.ascii_letters
CODE_LENGTH = 7
# Everything the redirect path may look up: generated codes and aliases alike.
CODE_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def generate(length: int = CODE_LENGTH) -> str:
    """A code of `length` characters drawn uniformly from 62, never a reserved word."""
    while True:
        code = "".join(secrets.choice(ALPHABET) for _ in range(length))
        if code.lower() not in RESERVED:
            return code
