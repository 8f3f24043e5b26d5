"""kurz.geo: the shipped IP-to-country data answers for public IPv4 and IPv6 addresses,
and None for what has no country (private, reserved, not an address)."""

from __future__ import annotations

import ipaddress
import random

import pytest

from kurz.analytics.events import told_country
from kurz.geo import ShippedLocator


@pytest.fixture(scope="module")
def locator() -> ShippedLocator:
    return ShippedLocator()


@pytest.mark.parametrize(
    ("ip", "country"),
    [
        ("8.8.8.8", "US"),
        ("81.2.69.142", "GB"),  # MaxMind's own test address
        ("2a00:1450:4001:82a::200e", "DE"),
        ("2001:4860:4860::8888", "US"),
        ("::ffff:81.2.69.142", "GB"),  # an IPv4 client on a dual-stack socket
    ],
)
def test_a_public_address_has_its_country(locator: ShippedLocator, ip: str, country: str) -> None:
    assert locator.country(ip) == country


@pytest.mark.parametrize(
    "ip",
    ["10.0.0.1", "192.168.1.1", "127.0.0.1", "::1", "fe80::1", "2001:db8::1", "198.51.100.7",
     "", "garbage", "999.1.1.1", "unknown", "::ffff:garbage"],
)  # fmt: skip
def test_what_has_no_country_is_none(locator: ShippedLocator, ip: str) -> None:
    assert locator.country(ip) is None


@pytest.mark.parametrize(
    ("sent", "country"),
    [
        (b"DE", "DE"),
        (b"de", "DE"),
        (b"XX", None),  # Cloudflare: unknown
        (b"T1", None),  # Cloudflare: Tor
        (b"D", None),
        (b"DEU", None),
        (b"1A", None),
        (b"", None),
        (None, None),
    ],
)
def test_a_proxys_country_header_is_a_country_code_or_nothing(
    sent: bytes | None, country: str | None
) -> None:
    assert told_country(sent) == country


def test_the_lean_lookup_answers_as_the_librarys_own(locator: ShippedLocator) -> None:
    """ShippedLocator asks geoip2fast's index directly: over 20,000 random addresses, and
    the edges of its data, it agrees with the library's public lookup."""
    from geoip2fast import GeoIP2Fast

    public = GeoIP2Fast(verbose=False, geoip2fast_data_file="geoip2fast-ipv6.dat.gz")
    rng = random.Random(11)
    ips = [str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(15_000)]
    ips += [str(ipaddress.IPv6Address((0x2000 << 112) | rng.getrandbits(125)))
            for _ in range(5_000)]  # fmt: skip
    ips += ["0.0.0.0", "255.255.255.255", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"]  # noqa: S104
    placed = 0
    for ip in ips:
        code = public.lookup(ip).country_code
        expected = code if len(code) == 2 and code.isalpha() else None
        assert locator.country(ip) == expected, ip
        placed += expected is not None
    assert placed > len(ips) // 2  # most of them have a country: the data is there
