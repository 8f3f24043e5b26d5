"""kurz.links.routes and kurz.links.traits: compiled targeting rules send a visit to
the first rule that matches, from what its headers, address, query and time say."""

from __future__ import annotations

import ipaddress
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kurz.links import traits
from kurz.links.routes import Routes
from kurz.links.traits import Place, Places, Traits, preferred, speaks

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36"
)
WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"

PLACES: dict[str, Place] = {"81.2.69.142": ("GB", "London"), "8.8.8.8": ("US", None)}
WHERE = Places(locate=lambda ip: PLACES.get(ip, (None, None)))
AT = 1_900_000_000.0


def visit(
    *,
    ua: str | None = None,
    lang: str | None = None,
    ip: str = "",
    query: bytes = b"",
    at: float = AT,
) -> Traits:
    """A visit as an HTTP request makes it (its headers in an ASGI scope)."""
    headers = []
    if ua is not None:
        headers.append((b"user-agent", ua.encode()))
    if lang is not None:
        headers.append((b"accept-language", lang.encode()))
    scope = {"headers": headers, "query_string": query}
    return Traits(WHERE, at=at, ip=ip, scope=scope)


def routes(*rules: dict[str, Any]) -> Routes:
    return Routes(orjson.dumps(list(rules)).decode())


def to(url: str, *conditions: dict[str, Any], match: str = "all") -> dict[str, Any]:
    return {"url": url, "match": match, "conditions": list(conditions)}


@pytest.mark.parametrize(
    ("ua", "device"),
    [
        (IPHONE, "ios"),
        (IPAD, "ios"),
        (ANDROID, "android"),
        (WINDOWS, "desktop"),
        (FIREFOX_LINUX, "desktop"),
        (GOOGLEBOT, "other"),
        (None, "other"),
        ("", "other"),
    ],
)
def test_the_device_class(ua: str | None, device: str) -> None:
    assert visit(ua=ua).device() == device


@pytest.mark.parametrize(
    ("header", "languages"),
    [
        ("en-GB,en;q=0.9,de;q=0.8", ("en-gb",)),
        ("de;q=0.5, fr;q=0.9, en;q=0.9", ("fr", "en")),
        ("de-CH", ("de-ch",)),
        ("*", ()),
        ("*, fr;q=0.5", ("fr",)),
        ("en;q=0", ()),
        ("en;q=abc, de;q=2, fr;q=0.1", ("fr",)),
        ("", ()),
        (",,;q=1", ()),
    ],
)
def test_the_preferred_languages_are_those_of_the_highest_q_value(
    header: str, languages: tuple[str, ...]
) -> None:
    assert preferred(header.encode()) == languages
    assert visit(lang=header).languages() == languages


@given(st.binary(max_size=200))
def test_any_accept_language_value_is_parsed_without_raising(header: bytes) -> None:
    found = preferred(header)
    assert all(tag and tag != "*" for tag in found)


@pytest.mark.parametrize(
    ("tags", "ranges", "match"),
    [
        (("en-gb",), ("en",), True),
        (("en",), ("en",), True),
        (("en",), ("en-gb",), False),
        (("eng",), ("en",), False),
        (("zh-hant-tw",), ("zh-hant",), True),
        ((), ("en",), False),
    ],
)
def test_a_language_range_takes_itself_and_what_is_more_specific(
    tags: tuple[str, ...], ranges: tuple[str, ...], match: bool
) -> None:
    assert speaks(tags, ranges) is match


def test_the_first_rule_that_matches_wins_else_the_links_own_url() -> None:
    compiled = routes(
        to("https://apps.apple.com/x", {"type": "device", "in": ["ios"]}),
        to("https://play.google.com/x", {"type": "device", "in": ["android"]}),
        to("https://example.com/mobile", {"type": "device", "in": ["ios", "android"]}),
    )
    assert compiled.urls == (
        "https://apps.apple.com/x",
        "https://play.google.com/x",
        "https://example.com/mobile",
    )
    assert compiled.pick(visit(ua=IPHONE)) == 1
    assert compiled.pick(visit(ua=ANDROID)) == 2
    assert compiled.pick(visit(ua=WINDOWS)) == 0


def test_all_needs_every_condition_and_any_one() -> None:
    conditions = ({"type": "device", "in": ["ios"]}, {"type": "language", "in": ["de"]})
    every = routes(to("https://e.com/1", *conditions))
    some = routes(to("https://e.com/1", *conditions, match="any"))
    for ua, lang, all_, any_ in [
        (IPHONE, "de-AT", 1, 1),
        (IPHONE, "en", 0, 1),
        (WINDOWS, "de", 0, 1),
        (WINDOWS, "en", 0, 0),
    ]:
        assert every.pick(visit(ua=ua, lang=lang)) == all_
        assert some.pick(visit(ua=ua, lang=lang)) == any_


def test_os_and_browser_families_without_regard_to_case() -> None:
    compiled = routes(
        to("https://e.com/1", {"type": "os", "in": ["windows"]}),
        to("https://e.com/2", {"type": "browser", "in": ["FIREFOX"]}),
    )
    assert compiled.pick(visit(ua=WINDOWS)) == 1
    assert compiled.pick(visit(ua=FIREFOX_LINUX)) == 2
    assert compiled.pick(visit(ua=IPHONE)) == 0


def test_country_and_city_where_the_database_knows_them() -> None:
    compiled = routes(
        to("https://e.com/london", {"type": "city", "in": ["LONDON"]}),
        to("https://e.com/us", {"type": "country", "in": ["US", "CA"]}),
    )
    assert compiled.pick(visit(ip="81.2.69.142")) == 1
    assert compiled.pick(visit(ip="8.8.8.8")) == 2
    assert compiled.pick(visit(ip="10.0.0.1")) == 0
    # No address (nothing worked it out) and no database: nowhere.
    assert compiled.pick(visit()) == 0
    nowhere = Traits(Places(), at=AT, ip="8.8.8.8", scope={"headers": [], "query_string": b""})
    assert compiled.pick(nowhere) == 0


def test_the_address_is_worked_out_from_the_scope_when_the_fast_path_did_not() -> None:
    places = Places(locate=WHERE.locate, client_ip=lambda scope: "8.8.8.8")
    traits = Traits(places, at=AT, scope={"headers": [], "query_string": b""})
    assert routes(to("https://e.com/us", {"type": "country", "in": ["US"]})).pick(traits) == 1


def test_query_parameter_present_or_equal() -> None:
    compiled = routes(
        to("https://e.com/mail", {"type": "query", "param": "ref", "equals": "mail"}),
        to("https://e.com/beta", {"type": "query", "param": "beta"}),
    )
    assert compiled.pick(visit(query=b"ref=mail")) == 1
    assert compiled.pick(visit(query=b"a=1&ref=web&ref=mail")) == 1
    assert compiled.pick(visit(query=b"ref=web")) == 0
    assert compiled.pick(visit(query=b"beta")) == 2
    assert compiled.pick(visit(query=b"beta=")) == 2
    assert compiled.pick(visit(query=b"ref=m%61il")) == 1
    assert compiled.pick(visit()) == 0


def test_a_time_window_includes_its_start_and_not_its_end() -> None:
    compiled = routes(
        to(
            "https://e.com/sale",
            {"type": "time", "from": "2030-01-01T00:00:00Z", "until": "2030-01-02T00:00:00Z"},
        ),
        to("https://e.com/after", {"type": "time", "from": "2030-01-02T00:00:00Z"}),
    )
    start = 1_893_456_000.0  # 2030-01-01T00:00:00Z
    assert compiled.pick(visit(at=start - 1)) == 0
    assert compiled.pick(visit(at=start)) == 1
    assert compiled.pick(visit(at=start + 86_399.5)) == 1
    assert compiled.pick(visit(at=start + 86_400)) == 2


def test_a_condition_this_version_does_not_know_never_matches() -> None:
    compiled = routes(
        to("https://e.com/1", {"type": "moon-phase", "in": ["full"]}),
        to(
            "https://e.com/2",
            {"type": "moon-phase"},
            {"type": "device", "in": ["ios"]},
            match="any",
        ),
    )
    assert compiled.pick(visit(ua=IPHONE)) == 2
    assert compiled.pick(visit(ua=WINDOWS)) == 0


def test_a_grpc_visit_is_described_by_its_parts() -> None:
    compiled = routes(
        to("https://e.com/1", {"type": "language", "in": ["de"]}, {"type": "query", "param": "x"}),
    )
    traits = Traits(WHERE, at=AT, user_agent=IPHONE, accept_language="de", query_string=b"x=1")
    assert compiled.pick(traits) == 1
    assert traits.device() == "ios"


def test_headers_are_read_only_when_a_condition_asks() -> None:
    class Headers(list[tuple[bytes, bytes]]):
        reads = 0

        def __iter__(self) -> Any:
            Headers.reads += 1
            return super().__iter__()

    headers = Headers([(b"user-agent", IPHONE.encode())])
    traits = Traits(WHERE, at=AT, scope={"headers": headers, "query_string": b"q"})
    assert routes(to("https://e.com/1", {"type": "query", "param": "q"})).pick(traits) == 1
    assert Headers.reads == 0
    assert (traits.device(), traits.languages(), traits.device()) == ("ios", (), "ios")
    assert Headers.reads == 1


def test_a_trusted_proxys_country_header_is_believed_over_the_database() -> None:
    proxy = Places(
        locate=WHERE.locate, header="CF-IPCountry", trusted=(ipaddress.ip_network("10.0.0.0/8"),)
    )
    compiled = routes(to("https://e.com/de", {"type": "country", "in": ["DE"]}))

    def sent(peer: str, value: bytes) -> int:
        scope = {"headers": [(b"cf-ipcountry", value)], "query_string": b"", "client": (peer, 1)}
        return compiled.pick(Traits(proxy, at=AT, ip="8.8.8.8", scope=scope))

    assert sent("10.0.0.1", b"de") == 1
    # From anyone else, or naming no country: the database's answer (US).
    assert sent("192.0.2.1", b"DE") == 0
    assert sent("10.0.0.1", b"XX") == 0
    assert sent("10.0.0.1", b"DEU") == 0


def test_an_address_is_located_once_and_the_memory_of_addresses_is_bounded() -> None:
    asked: list[str] = []

    def locate(ip: str) -> Place:
        asked.append(ip)
        return ("FR", "Paris")

    places = Places(locate=locate)
    assert places.place("81.2.69.142") == places.place("81.2.69.142") == ("FR", "Paris")
    assert asked == ["81.2.69.142"]
    for n in range(traits._MAX_PLACES + 10):
        places.place(str(ipaddress.IPv4Address(0x0A000000 + n)))
    assert len(places._located) <= traits._MAX_PLACES
    # No address, nothing to locate.
    assert places.place("") == (None, None)
    assert "" not in asked


def test_a_user_agent_is_classified_once_by_its_bytes_and_each_visit_agrees() -> None:
    agent = (
        b"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        b"Chrome/131.0.0.0 Mobile Safari/537.36"
    )
    scope = {"query_string": b"", "headers": [(b"user-agent", agent)]}
    first = Traits(Places(), at=0.0, ip="", scope=scope)
    second = Traits(Places(), at=0.0, ip="", scope=scope)
    assert first.kind() == second.kind() == ("android", "android", "chrome mobile")
    assert traits._kinds[agent] == first.kind()
    assert first.device() == first.agent().os.casefold() == "android"
