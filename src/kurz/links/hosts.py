"""Host names as kurz compares them: what a Host header or a domain's name is reduced to.

One form for every spelling of a host: lower case, no port, no trailing dot, an IDN
in its ASCII (xn--) form, an IPv6 address compressed in brackets. A Host header that
is none of these (garbage, an over-long label) has no form: it names no domain.
"""

from __future__ import annotations

import ipaddress
import re

import idna

MAX_HOST_LENGTH = 253
# A DNS label in ASCII: letters, digits and hyphens, not at either end. Underscores
# are let through, as browsers and resolvers accept them in practice.
_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
_PORT = re.compile(r"[0-9]{0,5}")


def _name(name: str) -> str | None:
    """A DNS name in its ASCII, lower-case form, or None."""
    name = name.removesuffix(".")
    if not name:
        return None
    if not name.isascii():
        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError, ValueError):
            return None
    name = name.lower()
    if len(name) > MAX_HOST_LENGTH:
        return None
    labels = name.split(".")
    if not all(_LABEL.fullmatch(label) for label in labels):
        return None
    if name.startswith("xn--") or ".xn--" in name:
        try:
            idna.decode(name)
        except (idna.IDNAError, UnicodeError, ValueError):
            return None
    return name


def normalize_host(host: str) -> str | None:
    """`host` (a Host header's value or a domain's name, with or without a port) in
    kurz's one form, or None when it cannot be a host."""
    host = host.strip()
    if host.startswith("["):
        address, bracket, rest = host[1:].partition("]")
        if not bracket or (rest and not (rest[0] == ":" and _PORT.fullmatch(rest[1:]))):
            return None
        try:
            return f"[{ipaddress.IPv6Address(address).compressed}]"
        except ValueError:
            return None
    name, colon, port = host.rpartition(":")
    if colon:
        if not _PORT.fullmatch(port):
            return None
        host = name
    try:
        return ipaddress.IPv4Address(host).compressed
    except ValueError:
        pass
    return _name(host)


def host_of_header(raw: bytes) -> str | None:
    """The host a Host header names, or None (not UTF-8 text, or no host)."""
    try:
        return normalize_host(raw.decode())
    except ValueError:
        return None
