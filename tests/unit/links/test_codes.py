"""Generated short codes."""

from __future__ import annotations

import secrets
from collections import Counter

import pytest

from kurz.links import codes
from kurz.links.urls import RESERVED


def test_codes_have_the_length_and_alphabet() -> None:
    for _ in range(200):
        code = codes.generate()
        assert len(code) == codes.CODE_LENGTH
        assert set(code) <= set(codes.ALPHABET)
        assert codes.CODE_PATTERN.fullmatch(code)


def test_codes_are_not_sequential_or_repeated() -> None:
    drawn = [codes.generate() for _ in range(2000)]
    assert len(set(drawn)) == len(drawn)
    assert drawn != sorted(drawn)
    # Every position uses the whole alphabet about evenly (a counter would not).
    first = Counter(code[0] for code in drawn)
    assert len(first) == len(codes.ALPHABET)
    assert max(first.values()) < 3 * (len(drawn) / len(codes.ALPHABET))


def test_reserved_words_are_never_generated(monkeypatch: pytest.MonkeyPatch) -> None:
    draws = iter("healthz" + "abcdefg")
    monkeypatch.setattr(secrets, "choice", lambda _alphabet: next(draws))
    assert "healthz" in RESERVED
    assert codes.generate() == "abcdefg"
