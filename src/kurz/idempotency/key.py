"""An Idempotency-Key's value, and the fingerprint of the input a key is bound to."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

MAX_LENGTH = 255
# The usual key (a UUID, say) has no escapes: one regex answers it.
_PLAIN = re.compile(rf'"([\x20\x21\x23-\x5b\x5d-\x7e]{{1,{MAX_LENGTH}}})"')


class MalformedKey(ValueError):
    """The header is not one Structured Field String of 1 to MAX_LENGTH characters."""


def parse_key(value: str) -> str:
    """The key an Idempotency-Key field value holds (RFC 8941 sf-string, no parameters).

    Several Idempotency-Key lines reach here joined by commas, and so are malformed.
    """
    text = value.strip(" ")
    plain = _PLAIN.fullmatch(text)
    if plain is not None:
        return plain.group(1)
    if len(text) < 2 or text[0] != '"':
        raise MalformedKey("it is not a quoted string")
    out: list[str] = []
    i, end = 1, len(text)
    while i < end:
        char = text[i]
        if char == "\\":
            if i + 1 < end and text[i + 1] in '"\\':
                out.append(text[i + 1])
                i += 2
                continue
            raise MalformedKey("a backslash may only escape '\"' or '\\'")
        if char == '"':
            if i + 1 != end:
                raise MalformedKey("something follows the closing quote")
            key = "".join(out)
            if not 1 <= len(key) <= MAX_LENGTH:
                raise MalformedKey(f"it must be 1 to {MAX_LENGTH} characters")
            return key
        if not " " <= char <= "~":
            raise MalformedKey("it may hold only printable ASCII characters")
        out.append(char)
        i += 1
    raise MalformedKey("the closing quote is missing")


def fingerprint(value: Any) -> str:
    """SHA-256 of `value` (validated input, as JSON-able data) written as canonical JSON.

    Canonical (sorted keys, no spaces, one spelling per string), so that the same input
    has one fingerprint whichever API it came through and however it was spelled there.
    """
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
