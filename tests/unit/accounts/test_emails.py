"""kurz.accounts.emails.normalise: one spelling per address, and a message for what is
not one (the 422's), never another error."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kurz.accounts.emails import MAX_LENGTH, normalise


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("alice@example.com", "alice@example.com"),
        ("  Alice@Example.COM \t", "alice@example.com"),
        ("ALICE@EXAMPLE.COM\n", "alice@example.com"),
        # NFC: a composed and a decomposed é are one address.
        ("ren\u0065\u0301@example.com", "ren\u00e9@example.com"),
        ("ren\u00e9@example.com", "ren\u00e9@example.com"),
        # The domain in ASCII (IDNA), the local part as typed (lower-cased).
        ("Jürgen@Bücher.example", "jürgen@xn--bcher-kva.example"),
        ("a+tag@sub.example.org", "a+tag@sub.example.org"),
    ],
)
def test_addresses_are_kept_in_one_spelling(typed: str, kept: str) -> None:
    assert normalise(typed) == kept
    assert normalise(kept) == kept


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("", "required"),
        ("   ", "required"),
        ("alice", "looks like"),
        ("alice@", "looks like"),
        ("@example.com", "looks like"),
        ("al ice@example.com", "spaces"),
        ("alice@exa\u0000mple.com", "control"),
        ("alice@example", "domain"),
        ("alice@.example.com", "domain"),
        ("alice@example..com", "domain"),
        ('"al"@example.com', "quotes"),
        ("a" * 65 + "@example.com", "64"),
        ("a@" + "b" * 300 + ".com", str(MAX_LENGTH)),
        ("x" * 300, str(MAX_LENGTH)),
        ("alice@\ud800.example", "control"),
        ("alice@exa_mple.com", "not a valid domain"),
    ],
)
def test_what_is_not_an_address_says_why(typed: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        normalise(typed)


@given(st.text(max_size=400))
def test_any_text_is_an_address_or_a_value_error(text: str) -> None:
    try:
        address = normalise(text)
    except ValueError as exc:
        message = str(exc)
        assert message
        return
    assert len(address) <= MAX_LENGTH
    assert normalise(address) == address
