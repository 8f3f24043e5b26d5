"""Cursors for keyset pagination: the last id of a page, opaque to the client.

A listing ordered by id, newest first, asks for `id < cursor`: rows added meanwhile
never shift a later page, and a page costs the same however deep it is.
"""

from __future__ import annotations

import base64
import binascii

from kurz.errors import invalid


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The id a cursor from encode_cursor holds; a 422 naming the `cursor` query
    parameter for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = raw.partition(":")
        if kind != "id" or not value.isascii() or not value.isdigit() or len(value) > 19:
            raise ValueError(cursor)
        last_id = int(value)
        if last_id >= 2**63:  # beyond a BIGINT: no row has it, and PostgreSQL would refuse it
            raise ValueError(cursor)
        return last_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise invalid("cursor", "is not a cursor this API returned", location="query") from None
