"""Keyset cursors: what encode_cursor gives back decodes to its id; anything else is a
422 naming the cursor, never a 500."""

from __future__ import annotations

import base64

import pytest

from kurz.db.keyset import decode_cursor, encode_cursor
from kurz.errors import Problem


@pytest.mark.parametrize("last_id", [1, 42, 2**62, 2**63 - 1])
def test_a_cursor_round_trips(last_id: int) -> None:
    assert decode_cursor(encode_cursor(last_id)) == last_id


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    ["nonsense", "", "!!!", _b64("id:"), _b64("id:-1"), _b64("id:1.5"), _b64("key:3"),
     _b64(f"id:{2**63}"), _b64("id:" + "9" * 20), _b64("id:٣")],
)  # fmt: skip
def test_anything_else_is_a_422_on_the_cursor(cursor: str) -> None:
    with pytest.raises(Problem) as refused:
        decode_cursor(cursor)
    assert refused.value.status == 422
    assert refused.value.errors == [
        {"field": "cursor", "in": "query", "message": "is not a cursor this API returned"}
    ]
