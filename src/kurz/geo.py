"""Where a visitor is: an IP address's country, from a database kurz ships.

The data is geoip2fast's (a registry package, MIT; its data is derived from MaxMind's
GeoLite2, CC BY-SA 4.0): IPv4 and IPv6 networks to ISO 3166-1 alpha-2 codes, loaded
from the package, so it works offline. A lookup is a bisection over sorted network
starts, about 1.2 µs (`make bench-geo`). Loading it takes about 0.08 s and 47 MB, once per
process, whichever part asks first.

Depends on nothing else in kurz.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

# The IPv4 and IPv6 file (the package's default is IPv4 only).
_DATA_FILE = "geoip2fast-ipv6.dat.gz"
_MAPPED = "::ffff:"


class Locator(Protocol):
    def country(self, ip: str) -> str | None:
        """The ISO 3166-1 alpha-2 code of the country `ip` is in, or None when unknown
        (a private or reserved address, one the data lacks, or not an address)."""
        ...


class ShippedLocator:
    """Countries from the database shipped with kurz (geoip2fast's).

    Asks geoip2fast's index directly rather than through `lookup`, which also finds
    the network's name, its ASN and its time taken, and formats them: half the cost
    (1.1 µs against 2.3). Those are the library's own internals, so the version is
    pinned below its next minor release, and tests/unit/test_geo.py holds the two
    answers equal over many addresses.
    """

    __slots__ = ("_country", "_index", "_parse")

    def __init__(self) -> None:
        data = _database()
        self._parse = data._ip2int
        self._index = data._main_index_lookup
        self._country = data._country_lookup

    def country(self, ip: str) -> str | None:
        if ip.startswith(_MAPPED) and "." in ip:
            ip = ip[len(_MAPPED) :]  # an IPv4 client on a dual-stack socket
        try:
            number = self._parse(ip)
        except Exception:  # the library raises its own error for what is no address
            return None
        root, chunk, _first, last, _length = self._index(number)
        if number > last:
            return None
        code: str = self._country(root, chunk)[0]
        # "--" for private and reserved networks.
        return code if len(code) == 2 and code.isalpha() else None


_loaded: Any = None
_lock = threading.Lock()


def _database() -> Any:
    """The shipped data, loaded once per process (tests build many apps)."""
    global _loaded
    with _lock:
        if _loaded is None:
            from geoip2fast import GeoIP2Fast  # 0.08 s: only when first asked

            _loaded = GeoIP2Fast(verbose=False, geoip2fast_data_file=_DATA_FILE)
        return _loaded
