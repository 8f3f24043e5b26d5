"""Which addresses a webhook may be sent to, checked where the connection is made."""

from __future__ import annotations

import ipaddress

import pytest

from kurz.webhooks.addresses import GuardedBackend, Refused, refusal
from kurz.webhooks.sender import Sender
from tests.integration.webhooks.receiver import receiving


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "a loopback address"),
        ("::1", "a loopback address"),
        ("10.0.0.1", "a private address"),
        ("172.16.5.4", "a private address"),
        ("192.168.1.1", "a private address"),
        ("fd12::1", "a private address"),
        ("fe80::1", "a link-local address"),
        ("169.254.10.10", "a link-local address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("100.64.0.1", "not a public address"),
        ("192.0.2.1", "a private address"),
        ("0.0.0.0", "the unspecified address"),  # noqa: S104 (an address checked, not bound)
        ("::", "the unspecified address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("169.254.169.254", "a cloud metadata address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("100.100.100.200", "a cloud metadata address"),
        ("93.184.216.34", None),
        ("2606:4700::1111", None),
    ],
)
def test_what_is_refused_and_why(address: str, why: str | None) -> None:
    assert refusal(ipaddress.ip_address(address), allow_private=False) == why


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("fe80::1", False),
        ("169.254.169.254", True),
        ("fd00:ec2::254", True),
        ("224.0.0.1", True),
        ("0.0.0.0", True),  # noqa: S104 (an address checked, not bound)
    ],
)
def test_allowing_private_addresses_never_allows_metadata_multicast_or_unspecified(
    address: str, refused: bool
) -> None:
    assert (refusal(ipaddress.ip_address(address), allow_private=True) is not None) == refused


async def test_a_name_is_checked_on_every_address_it_resolves_to_when_connecting() -> None:
    async with receiving() as receiver:
        guarded = GuardedBackend(allow_private=False)
        with pytest.raises(Refused, match=r"localhost resolves to .*loopback"):
            await guarded.connect_tcp("localhost", receiver.port, timeout=5)
        stream = await GuardedBackend(allow_private=True).connect_tcp(
            "127.0.0.1", receiver.port, timeout=5
        )
        await stream.aclose()


async def test_a_refused_address_is_never_sent_to() -> None:
    async with receiving() as receiver:
        sender = Sender(allow_private=False, timeout=5)
        try:
            attempt = await sender.post(
                f"http://localhost:{receiver.port}/hook", headers={}, body=b"{}"
            )
        finally:
            await sender.close()
        assert not attempt.ok
        assert attempt.error is not None
        assert attempt.error.startswith("refused: localhost resolves to")
        assert receiver.requests == []
