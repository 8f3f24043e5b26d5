"""The domains registry: which domain a Host header picks, from memory."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from hypothesis import given
from hypothesis import strategies as st

from kurz.db import Database
from kurz.links.codes import cache_key, split_key
from kurz.links.domains import Domains, Redirects


def row(domain_id: int, host: str, **redirects: str) -> Any:
    return SimpleNamespace(
        id=domain_id,
        host=host,
        https=True,
        root_redirect=redirects.get("root"),
        not_found_redirect=redirects.get("not_found"),
        expired_redirect=None,
        used_up_redirect=None,
    )


def registry(*, refuse: bool = False) -> Domains:
    domains = Domains(
        db=cast(Database, None),
        base_url="https://Kurz.Example:8443",
        instance=Redirects(root="https://e.com/root", not_found="https://e.com/nf"),
        refuse_unknown=refuse,
    )
    domains.use([row(3, "go.example", not_found="https://e.com/go-nf")])
    return domains


def headers(host: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"host", host), (b"user-agent", b"test")]


def test_the_host_header_picks_the_domain() -> None:
    domains = registry()
    assert domains.of(headers(b"GO.example.:443")) is domains.named("go.example")
    assert domains.of(headers(b"kurz.example")) is domains.default
    assert domains.of(headers(b"other.example")) is domains.default
    assert domains.of([]) is domains.default
    assert domains.default.host == "kurz.example"
    assert domains.default.short_url("abc") == "https://Kurz.Example:8443/abc"


def test_refused_hosts_have_no_domain() -> None:
    domains = registry(refuse=True)
    assert not domains.one
    assert domains.of(headers(b"other.example")) is None
    assert domains.of(headers(b"\xff")) is None
    assert domains.of(headers(b"KURZ.example:8443")) is domains.default
    assert domains.visited("other.example") is None
    assert domains.visited("") is domains.default


def test_a_domains_redirects_fall_back_to_the_instances() -> None:
    go = registry().named("go.example")
    assert go is not None
    assert go.redirects == Redirects(root="https://e.com/root", not_found="https://e.com/go-nf")
    assert (go.origin, go.key("abc")) == ("https://go.example", "3/abc")


def test_with_no_domain_but_the_default_nothing_is_picked() -> None:
    domains = registry()
    assert not domains.one
    domains.use([])
    assert domains.one
    assert domains.named("go.example") is None


def test_a_flood_of_made_up_hosts_is_remembered_up_to_a_bound() -> None:
    domains = registry()
    for number in range(5_000):
        assert domains.of(headers(b"h%d.example" % number)) is domains.default
    assert len(domains._seen) <= 1_024


@given(
    st.integers(min_value=0, max_value=2**62), st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)
)
def test_a_cache_key_names_its_domain_and_code(domain_id: int, code: str) -> None:
    assert split_key(cache_key(domain_id, code)) == (domain_id, code)
