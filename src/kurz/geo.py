"""Where a visitor is: an IP address's country, and its city where the data has it.

Two sources, chosen by `locator` (KURZ_GEOIP, KURZ_GEOIP_DB):

- the data kurz ships (geoip2fast's, a registry package, MIT; its data is derived from
  MaxMind's GeoLite2, CC BY-SA 4.0): IPv4 and IPv6 networks to ISO 3166-1 alpha-2
  codes, no cities, loaded from the package, so it works offline. A lookup is a
  bisection over sorted network starts (docs/analytics.md has its cost). Loading it
  takes a fraction of a second and some 50 MB, so it is loaded when first asked or
  warmed (the web app warms it as it starts; a worker, which locates nobody, never
  loads it);
- a MaxMind DB file the operator provides (GeoLite2 or DB-IP, Country or City), read
  with maxminddb, memory-mapped: opened when the locator is made, so that a missing
  or broken file stops kurz at start.

Depends on nothing else in kurz.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Literal, Protocol

# The IPv4 and IPv6 file (the package's default is IPv4 only).
_DATA_FILE = "geoip2fast-ipv6.dat.gz"
_MAPPED = "::ffff:"

Place = tuple[str | None, str | None]
_NOWHERE: Place = (None, None)


class GeoDataError(Exception):
    """The configured IP data cannot be used (KURZ_GEOIP_DB names no MaxMind DB file)."""


class Locator(Protocol):
    def country(self, ip: str) -> str | None:
        """The ISO 3166-1 alpha-2 code of the country `ip` is in, or None when unknown
        (a private or reserved address, one the data lacks, or not an address)."""
        ...

    def place(self, ip: str) -> Place:
        """(country, city) of `ip`: the country as `country` gives it, the city's name
        in English; either None when unknown (the city always, without city data)."""
        ...

    def warm(self) -> None:
        """Load the data now rather than at the first lookup."""
        ...


def _unmapped(ip: str) -> str:
    if ip.startswith(_MAPPED) and "." in ip:
        return ip[len(_MAPPED) :]  # an IPv4 client on a dual-stack socket
    return ip


class ShippedLocator:
    """Countries from the database shipped with kurz (geoip2fast's); no cities.

    Asks geoip2fast's index directly rather than through `lookup`, which also finds
    the network's name, its ASN and its time taken, and formats them: half the cost.
    Those are the library's own internals, so the version is pinned below its next
    minor release, and tests/unit/test_geo.py holds the two answers equal over many
    addresses.
    """

    __slots__ = ("_country", "_index", "_parse")

    def __init__(self) -> None:
        self._parse: Any = None
        self._index: Any = None
        self._country: Any = None

    def warm(self) -> None:
        if self._parse is None:
            data = _database()
            self._index = data._main_index_lookup
            self._country = data._country_lookup
            self._parse = data._ip2int  # last: the others are there once it is

    def country(self, ip: str) -> str | None:
        if self._parse is None:
            self.warm()
        try:
            number = self._parse(_unmapped(ip))
        except Exception:  # the library raises its own error for what is no address
            return None
        root, chunk, _first, last, _length = self._index(number)
        if number > last:
            return None
        code: str = self._country(root, chunk)[0]
        # "--" for private and reserved networks.
        return code if len(code) == 2 and code.isalpha() else None

    def place(self, ip: str) -> Place:
        return self.country(ip), None


class MaxMindLocator:
    """Countries and cities from a MaxMind DB file: GeoLite2 or DB-IP, Country or City
    (a Country database gives no cities), or any file of the same record layout."""

    __slots__ = ("_get", "_reader", "path")

    def __init__(self, path: str) -> None:
        import maxminddb

        self.path = path
        try:
            self._reader = maxminddb.open_database(path)
        except FileNotFoundError:
            raise GeoDataError(f"KURZ_GEOIP_DB: {path} does not exist") from None
        except (OSError, ValueError, RuntimeError) as exc:  # RuntimeError: InvalidDatabaseError
            raise GeoDataError(f"KURZ_GEOIP_DB: {path} is no MaxMind DB file ({exc})") from None
        self._get = self._reader.get

    def warm(self) -> None:
        """Nothing to load: the file is mapped, and read as lookups touch it."""

    def country(self, ip: str) -> str | None:
        return self.place(ip)[0]

    def place(self, ip: str) -> Place:
        try:
            record = self._get(_unmapped(ip))
        except ValueError:  # no address, or IPv6 in an IPv4 database
            return _NOWHERE
        if not isinstance(record, Mapping):
            return _NOWHERE
        return _iso_code(record.get("country")), _english_name(record.get("city"))

    def close(self) -> None:
        self._reader.close()


def _iso_code(country: object) -> str | None:
    if not isinstance(country, Mapping):
        return None
    code = country.get("iso_code")
    if isinstance(code, str) and len(code) == 2 and code.isascii() and code.isalpha():
        return code.upper()
    return None


def _english_name(city: object) -> str | None:
    if not isinstance(city, Mapping):
        return None
    names = city.get("names")
    name = names.get("en") if isinstance(names, Mapping) else None
    return name if isinstance(name, str) and name else None


def locator(geoip: Literal["shipped", "off"], database: str = "") -> Locator | None:
    """The locator the settings ask for: a MaxMind DB file when one is named, else the
    shipped data, or none when off. GeoDataError when the file cannot be used."""
    if geoip == "off":
        return None
    if database:
        return MaxMindLocator(database)
    return ShippedLocator()


_loaded: Any = None
_lock = threading.Lock()


def _database() -> Any:
    """The shipped data, loaded once per process (tests build many apps)."""
    global _loaded
    with _lock:
        if _loaded is None:
            from geoip2fast import GeoIP2Fast

            _loaded = GeoIP2Fast(verbose=False, geoip2fast_data_file=_DATA_FILE)
        return _loaded


def told_country(value: bytes | None) -> str | None:
    """A proxy's country header (CF-IPCountry and the like) as an ISO 3166-1 alpha-2
    code; None for none, and for its codes that name no country (Cloudflare's XX for
    unknown, T1 for Tor)."""
    if value is None or len(value) != 2 or not value.isalpha():
        return None
    code = value.decode("ascii").upper()
    return None if code in {"XX", "T1"} else code
