"""The Idempotency-Key parser agrees with a real Structured Field parser (http-sfv)."""

from __future__ import annotations

import pytest
from http_sfv.item import Item
from http_sfv.types import Token
from hypothesis import example, given
from hypothesis import strategies as st

from kurz.idempotency import MAX_LENGTH, MalformedKey, fingerprint, parse_key


def sfv_key(value: str) -> str | None:
    """What the draft accepts: an Item that is a String, 1 to 255 chars, no parameters."""
    item = Item()
    try:
        item.parse(value.encode("latin-1"))
    except ValueError:
        return None
    parsed = item.value
    if isinstance(parsed, Token) or not isinstance(parsed, str) or item.params:
        return None
    return parsed if 1 <= len(parsed) <= MAX_LENGTH else None


def kurz_key(value: str) -> str | None:
    try:
        return parse_key(value)
    except MalformedKey:
        return None


# Field values as a client might send them: mostly quoted strings with escapes,
# sometimes broken ones.
_printable = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
_escaped = st.lists(
    st.one_of(_printable.filter(lambda c: c not in '"\\'), st.sampled_from(['\\"', "\\\\"])),
    max_size=260,
).map("".join)
field_values = st.one_of(
    _escaped.map(lambda s: f'"{s}"'),
    st.tuples(_escaped, st.sampled_from(["", '"', ";a=1", ', "b"', " ", "\\"])).map(
        lambda t: f'"{t[0]}{t[1]}'
    ),
    st.text(st.characters(min_codepoint=0x00, max_codepoint=0xFF), max_size=40),
)


@given(field_values)
@example('"8e03978e-40d5-43e8-bc93-6894a57f9324"')
@example('""')
@example('"a" ')
@example(' "a"')
@example('"a\\b"')
@example('"' + "x" * MAX_LENGTH + '"')
@example('"' + "x" * (MAX_LENGTH + 1) + '"')
def test_parse_key_accepts_exactly_what_http_sfv_does(value: str) -> None:
    assert kurz_key(value) == sfv_key(value)


@pytest.mark.parametrize(
    ("value", "key"),
    [('"abc"', "abc"), ('"a\\"b"', 'a"b'), ('"a\\\\b"', "a\\b"), ('" "', " ")],
)
def test_parse_key_unescapes(value: str, key: str) -> None:
    assert parse_key(value) == key


@pytest.mark.parametrize(
    "value",
    ["abc", '""', '"abc', '"a"b"', '"a";x=1', '"a", "b"', '"é"', '"a\\b"', '"' + "k" * 256 + '"'],
)
def test_parse_key_refuses(value: str) -> None:
    with pytest.raises(MalformedKey):
        parse_key(value)


def test_fingerprint_ignores_how_the_same_input_is_ordered() -> None:
    a = fingerprint({"url": "https://e.com/", "tags": ["x"], "n": 1})
    b = fingerprint({"n": 1, "tags": ["x"], "url": "https://e.com/"})
    assert a == b
    assert fingerprint({"n": 2}) != fingerprint({"n": 1})
    assert fingerprint({"tags": ["x", "y"]}) != fingerprint({"tags": ["y", "x"]})
    assert fingerprint({"url": None}) != fingerprint({})
