"""Host normalisation: every spelling of a host to one form, and garbage to None."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kurz.links.hosts import host_of_header, normalize_host


@pytest.mark.parametrize(
    ("given_host", "normal"),
    [
        ("s.example", "s.example"),
        ("S.Example", "s.example"),
        ("s.example.", "s.example"),
        ("s.example:8080", "s.example"),
        ("S.EXAMPLE.:443", "s.example"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("BÜCHER.example", "xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("localhost", "localhost"),
        ("127.0.0.1:8080", "127.0.0.1"),
        ("[::1]", "[::1]"),
        ("[0:0::1]:8080", "[::1]"),
        ("[2001:DB8::1]", "[2001:db8::1]"),
    ],
)
def test_spellings_of_one_host_are_one_host(given_host: str, normal: str) -> None:
    assert normalize_host(given_host) == normal


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        ".",
        ":",
        "a..b",
        "-a.example",
        "a-.example",
        "a b.example",
        "[::1",
        "[::1]x",
        "[nope]",
        "s.example:http",
        "s.example:123456",
        "xn--zz.example",
        "a" * 64 + ".example",
        ("a" * 60 + ".") * 5,
    ],
)
def test_garbage_is_no_host(garbage: str) -> None:
    assert normalize_host(garbage) is None


@given(st.text(max_size=300))
def test_any_text_is_a_host_in_normal_form_or_none(text: str) -> None:
    normal = normalize_host(text)
    if normal is not None:
        # The normal form is ASCII and its own normal form.
        assert normal.isascii()
        assert normal == normal.lower()
        assert normalize_host(normal) == normal


@given(st.binary(max_size=300))
def test_any_header_bytes_are_a_host_or_none(raw: bytes) -> None:
    normal = host_of_header(raw)
    assert normal is None or normalize_host(normal) == normal
