"""Target URL and alias rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kurz.links.urls import Origins, normalize_target, validate_alias


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("https://example.com", "https://example.com/"),
        ("  HTTPS://Example.COM/Path  ", "https://example.com/Path"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("https://example.com:8443/a", "https://example.com:8443/a"),
        ("https://bücher.example/straße", "https://xn--bcher-kva.example/stra%C3%9Fe"),
        ("https://e.com/a b?q=ä#frag ment", "https://e.com/a%20b?q=%C3%A4#frag%20ment"),
        ("https://e.com/100%", "https://e.com/100%25"),
        ("https://e.com/already%20encoded", "https://e.com/already%20encoded"),
        ("http://[::1]:8080/x", "http://[::1]:8080/x"),
        ("http://127.0.0.1/", "http://127.0.0.1/"),
        ("https://e.com/?a=1&b=2", "https://e.com/?a=1&b=2"),
    ],
)
def test_normalizes(raw: str, normalized: str) -> None:
    assert normalize_target(raw) == normalized


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("javascript:alert(1)", "http or https"),
        ("ftp://e.com/", "http or https"),
        ("//e.com/", "http or https"),
        ("https:///path", "host"),
        ("https://e.com/\x00", "control"),
        ("https://a@e.com/", "credentials"),
        ("https://e.com:0x1/", "valid URL"),
        ("https://exa_mple..com/", "host name"),
        ("https://e.com/" + "a" * 8200, "8192"),
    ],
)
def test_rejects(raw: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        normalize_target(raw)


@given(st.text(max_size=200))
def test_any_text_is_normalized_or_rejected_with_valueerror(raw: str) -> None:
    try:
        url = normalize_target(raw)
    except ValueError:
        return
    assert url.isascii()
    assert not any(c.isspace() or ord(c) < 0x20 for c in url)
    assert normalize_target(url) == url  # idempotent


@given(st.from_regex(r"https?://[a-z]{1,10}\.[a-z]{2,3}(/[\w\-%.~]{0,20}){0,3}", fullmatch=True))
def test_plain_urls_are_accepted_unchanged_but_for_the_path(raw: str) -> None:
    url = normalize_target(raw)
    assert url.startswith(raw.split("/")[0] + "//")


def test_origins_count_default_ports_as_one() -> None:
    own = Origins.of(base_url="https://kurz.test", host="::", port=8080)
    assert own.contains("http://kurz.test/")
    assert own.contains("https://kurz.test/x")
    assert not own.contains("https://kurz.test:8443/")
    assert own.contains("http://localhost:8080/")


def test_origins_of_a_specific_listening_address() -> None:
    # Listening on one interface: loopback addresses do not reach it.
    own = Origins.of(base_url="https://s.example", host="192.0.2.7", port=8080)
    assert own.contains("http://192.0.2.7:8080/")
    assert own.contains("http://[::ffff:192.0.2.7]:8080/")
    assert not own.contains("http://127.0.0.1:8080/")


@pytest.mark.parametrize("alias", ["abc", "Spring-Sale_2026", "x" * 64])
def test_valid_aliases(alias: str) -> None:
    assert validate_alias(alias) == alias


@pytest.mark.parametrize("alias", ["ab", "x" * 65, "a b", "a/b", "ä-bc", "docs", "API", "healthz"])
def test_invalid_aliases(alias: str) -> None:
    with pytest.raises(ValueError, match=r"characters|reserved"):
        validate_alias(alias)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("http://127.1/", "http://127.0.0.1/"),
        ("http://2130706433/", "http://127.0.0.1/"),
        ("http://0x7f000001/", "http://127.0.0.1/"),
        ("http://0177.0.0.1/", "http://127.0.0.1/"),
        ("http://0x7F.1/", "http://127.0.0.1/"),
        ("http://192.168.1.1./", "http://192.168.1.1/"),
        ("http://[::FFFF:127.0.0.1]/", "http://[::ffff:7f00:1]/"),
    ],
)
def test_ipv4_hosts_take_their_dotted_form(raw: str, expected: str) -> None:
    # As a browser reads them (the WHATWG URL standard's IPv4 parser), so that the
    # stored target is the address it will reach.
    assert normalize_target(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["http://256.0.0.1/", "http://1.2.3.4.5/", "http://0x100000000/", "http://09.0.0.1/"],
)
def test_hosts_that_end_in_a_number_must_be_addresses(raw: str) -> None:
    with pytest.raises(ValueError, match="IPv4"):
        normalize_target(raw)


def test_port_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="port 0"):
        normalize_target("http://example.com:0/")
