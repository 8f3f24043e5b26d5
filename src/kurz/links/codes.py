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


def is_code(text: str) -> bool:
    """Whether `text` can name a link: the pattern, and no word kurz keeps for itself."""
    return CODE_PATTERN.fullmatch(text) is not None and text.lower() not in RESERVED


def code_in(path: str) -> str | None:
    """The code a request path asks for, if it can be one ("/CODE/" asks for CODE too,
    as at Bitly and Shlink a short link pasted with a slash after it still works)."""
    code = path[1:].removesuffix("/")
    return code if is_code(code) else None


def generate(length: int = CODE_LENGTH) -> str:
    """A code of `length` characters drawn uniformly from 62, never a reserved word."""
    while True:
        code = "".join(secrets.choice(ALPHABET) for _ in range(length))
        if code.lower() not in RESERVED:
            return code


def cache_key(domain_id: int, code: str) -> str:
    """Where the cache tiers keep the link `code` of a domain: the bare code on the
    default domain (0), "<domain id>/<code>" on another (a code has no '/')."""
    return code if not domain_id else f"{domain_id}/{code}"


def split_key(key: str) -> tuple[int, str]:
    """The domain and code a cache key names."""
    domain, slash, code = key.partition("/")
    return (int(domain), code) if slash else (0, key)
