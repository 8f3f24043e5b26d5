"""kurz.geo: the shipped IP-to-country data and a MaxMind DB file (built here, never
downloaded) answer for public IPv4 and IPv6 addresses, and None for what they do not
place (private, reserved, not an address); a file that is no MaxMind DB is refused, and
the shipped data loads only when asked."""

from __future__ import annotations

import ipaddress
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from kurz import geo
from kurz.config import Settings
from kurz.geo import GeoDataError, MaxMindLocator, ShippedLocator, told_country
from tests.support import Places, mmdb


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


def test_the_shipped_data_knows_no_city(locator: ShippedLocator) -> None:
    assert locator.place("81.2.69.142") == ("GB", None)
    assert locator.place("10.0.0.1") == (None, None)


# GeoLite2 City's layout: networks of either family, a country without a city, a city.
PLACES: Places = {
    "81.2.69.0/24": ("GB", "London"),
    "81.2.70.0/24": ("GB", None),
    "2a02:cf40::/29": ("DE", "Berlin"),
    "2001:4860::/32": ("US", "Mountain View"),
    "175.16.199.0/24": ("CN", "Changchun"),
    "203.0.113.0/24": (None, None),  # a network with an empty record
}


@pytest.fixture(scope="module")
def city_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mmdb(tmp_path_factory.mktemp("geo") / "city.mmdb", PLACES)


@pytest.mark.parametrize(
    ("ip", "place"),
    [
        ("81.2.69.142", ("GB", "London")),
        ("81.2.69.0", ("GB", "London")),
        ("81.2.69.255", ("GB", "London")),
        ("81.2.70.1", ("GB", None)),
        ("175.16.199.7", ("CN", "Changchun")),
        ("::ffff:81.2.69.142", ("GB", "London")),  # an IPv4 client on a dual-stack socket
        ("2a02:cf40::1", ("DE", "Berlin")),
        ("2a02:cf47:ffff::1", ("DE", "Berlin")),
        ("2001:4860:4860::8888", ("US", "Mountain View")),
        ("2A02:CF40::1", ("DE", "Berlin")),
    ],
)
def test_a_maxmind_file_places_ipv4_and_ipv6_addresses(
    city_file: Path, ip: str, place: tuple[str | None, str | None]
) -> None:
    found = MaxMindLocator(str(city_file))
    assert found.place(ip) == place
    assert found.country(ip) == place[0]


@pytest.mark.parametrize(
    "ip",
    ["81.2.68.255", "81.2.71.0", "8.8.8.8", "2a02:cf48::1", "203.0.113.5", "10.0.0.1", "::1",
     "::", "", "garbage", "999.1.1.1", "::ffff:garbage", "81.2.69.142%eth0"],
)  # fmt: skip
def test_what_a_maxmind_file_does_not_place_is_nowhere(city_file: Path, ip: str) -> None:
    assert MaxMindLocator(str(city_file)).place(ip) == (None, None)


def test_an_ipv4_only_file_places_no_ipv6_address(tmp_path: Path) -> None:
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=4, database_type="GeoLite2-Country")
    writer.insert_network(IPSet(["81.2.69.0/24"]), {"country": {"iso_code": "gb"}})
    writer.to_db_file(str(tmp_path / "v4.mmdb"))
    found = MaxMindLocator(str(tmp_path / "v4.mmdb"))
    assert found.place("81.2.69.142") == ("GB", None)  # a Country file: no city
    assert found.place("2a02:cf40::1") == (None, None)


def test_records_of_another_shape_place_nothing_rather_than_fail(tmp_path: Path) -> None:
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=4, database_type="Odd")
    shapes: list[object] = [
        "a string", 7, {"country": "GB"}, {"country": {"iso_code": "GBR"}},
        {"country": {"iso_code": 44}}, {"city": {"names": "London"}},
        {"city": {"names": {"de": "London"}}}, {"city": {"names": {"en": ""}}},
    ]  # fmt: skip
    for n, shape in enumerate(shapes):
        writer.insert_network(IPSet([f"192.0.2.{n}/32"]), shape)  # type: ignore[arg-type]
    writer.to_db_file(str(tmp_path / "odd.mmdb"))
    found = MaxMindLocator(str(tmp_path / "odd.mmdb"))
    for n in range(len(shapes)):
        assert found.place(f"192.0.2.{n}") == (None, None), shapes[n]


def test_a_missing_or_foreign_file_is_refused_with_its_reason(tmp_path: Path) -> None:
    with pytest.raises(GeoDataError, match=r"^KURZ_GEOIP_DB: .*nowhere\.mmdb does not exist$"):
        MaxMindLocator(str(tmp_path / "nowhere.mmdb"))
    (tmp_path / "notes.txt").write_text("no database\n")
    with pytest.raises(GeoDataError, match=r"notes\.txt is no MaxMind DB file"):
        MaxMindLocator(str(tmp_path / "notes.txt"))
    with pytest.raises(GeoDataError, match=r"is no MaxMind DB file"):
        MaxMindLocator(str(tmp_path))  # a directory


def test_the_settings_choose_the_locator(city_file: Path) -> None:
    assert geo.locator("off") is None
    assert isinstance(geo.locator("shipped"), ShippedLocator)
    chosen = geo.locator("shipped", str(city_file))
    assert isinstance(chosen, MaxMindLocator)
    assert chosen.place("81.2.69.142") == ("GB", "London")


def test_a_file_with_the_data_off_is_refused_as_configuration(city_file: Path) -> None:
    with pytest.raises(ValidationError, match="KURZ_GEOIP is off"):
        Settings(geoip="off", geoip_db=str(city_file))


def test_the_shipped_data_loads_when_the_web_app_starts_not_when_kurz_is_built(
    tmp_path: Path,
) -> None:
    """A worker builds every part and never places a visitor: building loads nothing.
    The web app loads it as it starts, not at its first new visitor's redirect."""
    script = """
import asyncio
import sys
import kurz.geo
from kurz.app import create_app
from kurz.bootstrap import build
from kurz.config import Settings

parts = build(Settings())
assert parts.locator is not None and parts.analytics is not None
print(kurz.geo._loaded is None, "geoip2fast" in sys.modules)
app = create_app(parts)

async def serve():
    async with app.router.lifespan_context(app):
        print(kurz.geo._loaded is None, parts.locator.place("81.2.69.142"))

asyncio.run(serve())
"""
    env = {
        **os.environ,
        "KURZ_DATABASE_URL": f"sqlite:///{tmp_path / 'kurz.db'}",
        "KURZ_GRPC_PORT": "0",
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["True False", "False ('GB', None)"]
