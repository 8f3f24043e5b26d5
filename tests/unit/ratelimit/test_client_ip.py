"""Which address a request counts against."""

from __future__ import annotations

import pytest

from kurz.config import Settings
from kurz.limits import ServiceLimits
from kurz.ratelimit import MemoryLimiter
from tests.support import FakeClock


def ip(peer: str, forwarded: list[str], trusted: str = "") -> str:
    settings = Settings.model_validate({"trusted_proxies": trusted})
    limits = ServiceLimits(settings, MemoryLimiter(FakeClock()))
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
    return limits.client_ip({"client": (peer, 1234), "headers": headers})


def test_the_peer_counts_when_no_proxy_is_trusted() -> None:
    assert ip("198.51.100.7", ["203.0.113.1"]) == "198.51.100.7"


def test_a_peer_that_is_not_a_trusted_proxy_cannot_forge_its_address() -> None:
    assert ip("198.51.100.7", ["203.0.113.1"], trusted="10.0.0.0/8") == "198.51.100.7"


@pytest.mark.parametrize(
    ("forwarded", "client"),
    [
        (["203.0.113.1"], "203.0.113.1"),
        (["203.0.113.1, 10.0.0.2"], "203.0.113.1"),
        (["6.6.6.6, 203.0.113.1, 10.0.0.2"], "203.0.113.1"),  # 6.6.6.6 was the client's lie
        (["6.6.6.6", "203.0.113.1"], "203.0.113.1"),  # two header lines count as one list
        (["10.0.0.3, 10.0.0.2"], "10.0.0.3"),  # all ours: the leftmost
        (["not-an-ip"], "10.0.0.1"),
        ([], "10.0.0.1"),
    ],
)
def test_behind_a_trusted_proxy_the_nearest_untrusted_hop_counts(
    forwarded: list[str], client: str
) -> None:
    assert ip("10.0.0.1", forwarded, trusted="10.0.0.0/8") == client


def test_ipv6_proxies() -> None:
    assert ip("::1", ["2001:db8::5"], trusted="::1") == "2001:db8::5"
