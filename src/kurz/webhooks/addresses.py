"""Where a webhook may be sent: the URL a user registers, and every address connected to.

Server-side request forgery is the risk: a user who registers http://169.254.169.254/
or http://127.0.0.1:6379/ would have kurz's workers call its cloud metadata service or
its Redis. So every address a delivery connects to is checked, after resolving the
name, and the connection goes to the address that was checked (`GuardedBackend`):
a name that resolves to a public address when registered and to a private one when
sent (DNS rebinding) is refused when sent.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud metadata services: AWS, GCP and Azure on 169.254.169.254 (link-local, refused
# anyway), AWS's IPv6 one, Alibaba's and Oracle's. Never a webhook, whatever is allowed.
METADATA = frozenset(
    ipaddress.ip_address(address)
    for address in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)


class Refused(Exception):
    """An address a webhook may not be sent to; the message says why."""


def check_url(url: str) -> str:
    """`url` if it can be a webhook's: absolute http(s), a host, no credentials, no
    fragment. A ValueError says what is wrong (the API's 422)."""
    if not url.isascii() or any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise ValueError("must be an absolute http(s) URL in ASCII (punycode for names)")
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"}:
        raise ValueError("must be an http or https URL")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry credentials (user:password@); use the signature")
    if not parts.hostname:
        raise ValueError("must name a host")
    if parts.fragment or url.endswith("#"):
        raise ValueError("must not have a fragment (#...)")
    try:
        parts.port  # noqa: B018 (raises for a port out of range)
    except ValueError:
        raise ValueError("has a port out of range") from None
    return url


def _unmapped(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv4-mapped IPv6 address (::ffff:a.b.c.d) stands for."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def refusal(address: IPAddress, *, allow_private: bool) -> str | None:
    """Why a delivery may not connect to `address`; None if it may."""
    address = _unmapped(address)
    if address in METADATA:
        return "a cloud metadata address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "the unspecified address"
    if allow_private:
        return None
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_private:
        return "a private address"
    # Shared (100.64/10), reserved, documentation ranges, 6to4 relays and the like.
    if not address.is_global:
        return "not a public address"
    return None


def check_host(host: str, *, allow_private: bool) -> None:
    """Refuse at registration what can be refused without resolving: an IP literal that
    may not be connected to, and `localhost`. Names are checked when connected to."""
    name = host.strip("[]").lower().rstrip(".")
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        if not allow_private and (name == "localhost" or name.endswith(".localhost")):
            raise Refused(f"{host} is a loopback name") from None
        return
    why = refusal(address, allow_private=allow_private)
    if why is not None:
        raise Refused(f"{host} is {why}")


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (a literal: itself), in the resolver's order."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc.strerror}") from exc
    found: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0])
        if address not in found:
            found.append(address)
    return found


def checked(addresses: Iterable[IPAddress], host: str, *, allow_private: bool) -> None:
    """Refuse the lot if any address may not be connected to: a name with one public
    and one private address is not to be trusted with either."""
    for address in addresses:
        why = refusal(address, allow_private=allow_private)
        if why is not None:
            raise Refused(f"{host} resolves to {address}, {why}")


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to addresses `refusal` allows.

    The name is resolved here, every address checked, and the connection made to an
    address that was checked (never to the name, which a second lookup could answer
    differently). TLS still verifies the certificate against the name.
    """

    def __init__(self, *, allow_private: bool, inner: httpcore.AsyncNetworkBackend | None = None):
        self.allow_private = allow_private
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await resolve(host, port)
        checked(addresses, host, allow_private=self.allow_private)
        last: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise Refused("webhooks are sent over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)
