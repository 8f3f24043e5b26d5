"""The rules a target URL and an alias must follow."""

from __future__ import annotations

import ipaddress
import re
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


def _ascii_host(hostname: str) -> str:
    try:
        address = ipaddress.ip_address(hostname)
    except ValueError:
        pass
    else:
        return f"[{address.compressed}]" if address.version == 6 else address.compressed
    try:
        return idna.encode(hostname.rstrip("."), uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise ValueError(f"has an invalid host name ({exc})") from None


def origin_key(url: str) -> tuple[str, str]:
    """The (host, port) that decides whether two URLs reach the same server.

    The default ports of http and https count as one, since kurz at
    https://s.example is also reachable at http://s.example (which redirects).
    """
    parts = urlsplit(url)
    host = _ascii_host(parts.hostname or "").lower()
    port = parts.port
    default = port is None or port == _DEFAULT_PORTS.get(parts.scheme.lower())
    return host, "default" if default else str(port)


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
