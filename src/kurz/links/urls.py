"""The rules a target URL and an alias must follow."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote, urlsplit, urlunsplit

import idna

MAX_URL_LENGTH = 8 * 1024
ALIAS_PATTERN = re.compile(r"[A-Za-z0-9_-]{3,64}")
MAX_TAG_LENGTH = 64

# Paths kurz serves itself, or may serve later; an alias can never shadow them.
RESERVED = frozenset(
    {
        "admin", "api", "assets", "docs", "favicon.ico", "graphql", "grpc", "health",
        "healthz", "login", "logout", "metrics", "openapi.json", "problems", "readyz",
        "redoc", "robots.txt", "static", "well-known",
    }
)  # fmt: skip

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Characters a URL may carry as they are; everything else is percent-encoded (UTF-8).
_SAFE = "!#$%&'()*+,/:;=?@[]~-._"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def normalize_target(raw: str) -> str:
    """Validate a target URL and return its canonical ASCII form.

    http and https only; a host is required; IDN hosts become their A-label (punycode)
    form; other non-ASCII characters are percent-encoded, so that the result can go
    into a Location header unchanged.
    """
    url = raw.strip()
    if not url:
        raise ValueError("must not be empty")
    if _CONTROL.search(url):
        raise ValueError("must not contain control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError("must be an http or https URL")
    if not parts.hostname:
        raise ValueError("must have a host")
    if port == 0:
        raise ValueError("must not name port 0, which no server listens on")
    if parts.username is not None or parts.password is not None:
        # http://bank.example@evil.example/ reads as one host and goes to another.
        raise ValueError("must not contain credentials (user:password@)")
    host = _ascii_host(parts.hostname)
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = _encode(parts.path) or "/"
    query = _encode(parts.query)
    fragment = _encode(parts.fragment)
    normalized = urlunsplit((scheme, netloc, path, query, fragment))
    if len(normalized) > MAX_URL_LENGTH:
        raise ValueError(f"must be at most {MAX_URL_LENGTH} characters")
    return normalized


def _encode(component: str) -> str:
    # Keep escapes already present; a '%' that starts none is a literal percent sign.
    return quote(_LONE_PERCENT.sub("%25", component), safe=_SAFE)


# Kept: links mostly point at a few hosts (a batch's, a team's), and UTS 46 is the
# costliest step of reading a URL; a host it refuses raises again each time.
@lru_cache(maxsize=4096)
def _ascii_host(hostname: str) -> str:
    try:
        address = ipaddress.ip_address(hostname)
    except ValueError:
        pass
    else:
        return f"[{address.compressed}]" if address.version == 6 else address.compressed
    ipv4 = _whatwg_ipv4(hostname)
    if ipv4 is not None:
        return ipv4.compressed
    try:
        return idna.encode(hostname.rstrip("."), uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise ValueError(f"has an invalid host name ({exc})") from None


_NUMBER = re.compile(r"(?:0[xX][0-9A-Fa-f]*|[0-9]+)")


def _whatwg_ipv4(hostname: str) -> ipaddress.IPv4Address | None:
    """The address a browser reads in a host whose last label is a number
    (`127.1`, `2130706433`, `0x7f.0.0.1`, `0177.0.0.1`), as the WHATWG URL standard's
    IPv4 parser does; None when the host is a name. curl and inet_aton agree.
    """
    labels = hostname.split(".")
    if labels[-1] == "" and len(labels) > 1:
        labels.pop()
    if not _NUMBER.fullmatch(labels[-1]):
        return None
    if len(labels) > 4 or not all(_NUMBER.fullmatch(label) for label in labels):
        raise ValueError("has a host that ends in a number but is no IPv4 address")
    try:
        numbers = [_ipv4_number(label) for label in labels]
    except ValueError:
        raise ValueError("has a host that ends in a number but is no IPv4 address") from None
    *leading, last = numbers
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(numbers)):
        raise ValueError("has an IPv4 address out of range")
    value = last
    for i, n in enumerate(leading):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def _ipv4_number(label: str) -> int:
    if label[:2] in ("0x", "0X"):
        return int(label[2:] or "0", 16)
    if len(label) > 1 and label.startswith("0"):
        return int(label, 8)
    return int(label, 10)


def _port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or _DEFAULT_PORTS.get(parts.scheme.lower(), 80)


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address a canonical host (from _ascii_host) names, IPv4-mapped IPv6 unwrapped."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_this_machine(host: str) -> bool:
    """Whether a canonical host always reaches this machine: a loopback or unspecified
    address (a connect to 0.0.0.0 or :: goes to the local host), or a `localhost`
    name (RFC 6761 reserves them for loopback)."""
    address = _address(host)
    if address is not None:
        return address.is_loopback or address.is_unspecified
    return host == "localhost" or host.endswith(".localhost")


@dataclass(frozen=True)
class Origins:
    """Where this kurz answers: a target there would redirect to itself, in a loop.

    `names` are canonical (host, port) pairs (the base URL, and the listening address
    when it is a specific one); `local_ports` are ports on which every loopback
    address and `localhost` name reaches kurz (it listens on a loopback or on every
    address). Names that a DNS server maps to this machine are not known here.
    """

    names: frozenset[tuple[str, int]]
    local_ports: frozenset[int]

    @classmethod
    def of(cls, *, base_url: str, host: str, port: int) -> Origins:
        base = _canonical(urlsplit(base_url).hostname or "")
        base_port = _port(base_url)
        names = {(base, base_port)}
        if base_port in _DEFAULT_PORTS.values():
            # kurz at https://s.example also answers http://s.example (and redirects).
            names |= {(base, p) for p in _DEFAULT_PORTS.values()}
        local_ports: set[int] = set()
        listening = _canonical(host)
        if _is_this_machine(listening):
            local_ports.add(port)
        else:
            names.add((listening, port))
        for name, name_port in list(names):
            if _is_this_machine(name):
                local_ports.add(name_port)
        return cls(frozenset(names), frozenset(local_ports))

    def contains(self, url: str) -> bool:
        """Whether `url` (a normalized target) reaches this kurz."""
        host = _canonical(urlsplit(url).hostname or "")
        port = _port(url)
        if (host, port) in self.names:
            return True
        return port in self.local_ports and _is_this_machine(host)


def _canonical(hostname: str) -> str:
    """A host as _ascii_host spells it, lower case; an IPv4-mapped address as IPv4."""
    host = _ascii_host(hostname).lower()
    address = _address(host)
    if isinstance(address, ipaddress.IPv4Address):
        return address.compressed
    return host


def validate_alias(alias: str) -> str:
    if not ALIAS_PATTERN.fullmatch(alias):
        raise ValueError("must be 3 to 64 characters of A-Z, a-z, 0-9, '_' and '-'")
    if alias.lower() in RESERVED:
        raise ValueError(f"'{alias}' is reserved for kurz's own paths")
    return alias


def validate_tag(tag: str) -> str:
    tag = tag.strip()
    if not tag:
        raise ValueError("must not be empty")
    if len(tag) > MAX_TAG_LENGTH:
        raise ValueError(f"must be at most {MAX_TAG_LENGTH} characters")
    if _CONTROL.search(tag):
        raise ValueError("must not contain control characters")
    return tag
