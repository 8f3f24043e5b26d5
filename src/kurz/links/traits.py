"""What targeting rules may know of one visit, each part worked out at most once.

A visit's headers are scanned once, and only when a rule asks; the user agent is
classified (kurz.agents, from its cache), the Accept-Language header parsed, the
address located and the query parsed only for the conditions that need them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from ipaddress import IPv4Network, IPv6Network
from typing import Any
from urllib.parse import parse_qs

from kurz.agents import Agent, classify
from kurz.cache import LRUCache
from kurz.geo import told_country
from kurz.limits import within

# The country and the city (None where unknown) of an address.
Place = tuple[str | None, str | None]
Locate = Callable[[str], Place]
NOWHERE: Place = (None, None)

# What the device, os and browser conditions read of a user agent: its device class,
# and its OS and browser families case-folded. By the header's bytes, so that a visit
# with a known user agent costs one dict lookup: no decoding, no classifier lookup, no
# case-folding per condition. A plain dict emptied when full, as kurz.analytics keeps
# its visitors: cheaper per hit than an LRU's bookkeeping, and a flood of new agents
# costs no more memory than _MAX_KINDS small entries.
Kind = tuple[str, str, str]
_kinds: dict[bytes | None, Kind] = {}
_MAX_KINDS = 4096
# Addresses located, for the same reason (a lookup in the IP data costs about 1 µs).
_MAX_PLACES = 4096

# Accept-Language values, by header, as the tags of the highest q-value: few distinct
# values make most traffic, as with user agents.
_preferred: LRUCache[bytes, tuple[str, ...]] = LRUCache(4096)
_MAX_CACHED = 256
_MAX_LANGUAGES = 32


class Places:
    """How a visit's address is found and located, the same for every visit: as click
    analytics locates it (kurz.analytics.recorder), so that both agree."""

    __slots__ = ("_located", "client_ip", "header", "locate", "trusted")

    def __init__(
        self,
        locate: Locate | None = None,
        client_ip: Callable[[Mapping[str, Any]], str] | None = None,
        *,
        header: str = "",
        trusted: tuple[IPv4Network | IPv6Network, ...] = (),
    ) -> None:
        self.locate = locate
        # The client's address from a scope (the limiter's, which believes trusted
        # proxies): the fast path works it out only when a limit or a click needs it.
        self.client_ip = client_ip
        # A trusted proxy's header naming the visitor's country (KURZ_GEOIP_HEADER).
        self.header = header.lower().encode("latin-1") or None
        self.trusted = trusted
        self._located: dict[str, Place] = {}

    def place(self, ip: str) -> Place:
        """Where `ip` is, from the addresses located lately or the IP data."""
        place = self._located.get(ip)
        if place is None:
            locate = self.locate
            place = NOWHERE if locate is None or not ip else locate(ip)
            located = self._located
            if len(located) >= _MAX_PLACES:
                located.clear()
            located[ip] = place
        return place

    def told(self, scope: Mapping[str, Any], value: bytes) -> str | None:
        """The country a proxy's header names, if a trusted proxy sent it; None for
        none, and for the codes that name no country (Cloudflare's XX and T1)."""
        client = scope.get("client")
        if not client or not within(client[0], self.trusted):
            return None
        return told_country(value)


class Traits:
    """One visit, as targeting conditions see it."""

    __slots__ = (
        "_accept_language",
        "_agent",
        "_ip",
        "_kind",
        "_languages",
        "_place",
        "_places",
        "_query",
        "_query_string",
        "_scope",
        "_user_agent",
        "at",
    )

    def __init__(
        self,
        places: Places,
        *,
        at: float,
        ip: str = "",
        scope: Mapping[str, Any] | None = None,
        user_agent: str | None = None,
        accept_language: str | None = None,
        query_string: bytes = b"",
    ) -> None:
        self._places = places
        # When, on the server's clock (Unix seconds).
        self.at = at
        self._ip = ip
        self._scope = scope
        self._user_agent: bytes | None = None
        self._accept_language: bytes | None = None
        if scope is None:
            self._user_agent = None if user_agent is None else user_agent.encode("latin-1")
            if accept_language is not None:
                self._accept_language = accept_language.encode("latin-1", "replace")
            self._query_string = query_string
        else:
            self._query_string = scope["query_string"]
        self._agent: Agent | None = None
        self._kind: Kind | None = None
        self._languages: tuple[str, ...] | None = None
        self._place: Place | None = None
        self._query: dict[str, list[str]] | None = None

    def _scan(self) -> None:
        """Read the two headers the conditions use from an HTTP visit, once."""
        scope = self._scope
        if scope is None:
            return
        self._scope = None
        header = self._places.header
        for name, value in scope["headers"]:
            if name == b"user-agent":
                self._user_agent = value
            elif name == b"accept-language":
                self._accept_language = value
            elif name == header:
                country = self._places.told(scope, value)
                if country is not None:
                    self._place = (country, None)
        if not self._ip and self._places.client_ip is not None:
            self._ip = self._places.client_ip(scope)

    def agent(self) -> Agent:
        agent = self._agent
        if agent is None:
            self._scan()
            raw = self._user_agent
            agent = self._agent = classify(None if raw is None else raw.decode("latin-1"))
        return agent

    def kind(self) -> Kind:
        """The device class, OS family and browser family (both case-folded) of the
        visitor's user agent."""
        kind = self._kind
        if kind is None:
            self._scan()
            raw = self._user_agent
            kind = _kinds.get(raw)
            if kind is None:
                agent = classify(None if raw is None else raw.decode("latin-1"))
                kind = (device_class(agent), agent.os.casefold(), agent.browser.casefold())
                if raw is None or len(raw) <= _MAX_CACHED:
                    if len(_kinds) >= _MAX_KINDS:
                        _kinds.clear()
                    _kinds[raw] = kind
            self._kind = kind
        return kind

    def device(self) -> str:
        """ios, android, desktop or other (bots, consoles, TVs, what is not known)."""
        return self.kind()[0]

    def languages(self) -> tuple[str, ...]:
        """The visitor's preferred languages: the tags of the highest q-value, lower-case."""
        found = self._languages
        if found is None:
            self._scan()
            found = self._languages = preferred(self._accept_language)
        return found

    def place(self) -> Place:
        place = self._place
        if place is None:
            self._scan()
            place = self._place
        if place is None:
            place = self._place = self._places.place(self._ip)
        return place

    def query(self) -> dict[str, list[str]]:
        query = self._query
        if query is None:
            raw = self._query_string.decode("latin-1")
            query = self._query = parse_qs(raw, keep_blank_values=True) if raw else {}
        return query


def device_class(agent: Agent) -> str:
    """ios, android, desktop or other (bots, consoles, TVs, what is not known)."""
    if agent.bot:
        return "other"
    if agent.os == "iOS":
        return "ios"
    if agent.os == "Android":
        return "android"
    return "desktop" if agent.device == "desktop" else "other"


def preferred(header: bytes | None) -> tuple[str, ...]:
    """The language tags an Accept-Language value ranks highest (RFC 9110 12.5.4);
    `*` and q=0 name no language a rule can match."""
    if not header:
        return ()
    found = _preferred.get(header)
    if found is None:
        found = _parse(header.decode("latin-1"))
        if len(header) <= _MAX_CACHED:
            _preferred.put(header, found)
    return found


def _parse(value: str) -> tuple[str, ...]:
    best = 0.0
    tags: list[str] = []
    for item in value.split(",")[:_MAX_LANGUAGES]:
        tag, _, params = item.partition(";")
        tag = tag.strip().lower()
        if not tag or tag == "*":
            continue
        weight = 1.0
        params = params.strip().lower()
        if params.startswith("q="):
            try:
                weight = float(params[2:])
            except ValueError:
                continue
            if not 0.0 <= weight <= 1.0:
                continue
        if weight > best:
            best, tags = weight, [tag]
        elif weight == best and weight > 0.0:
            tags.append(tag)
    return tuple(tags)


def speaks(languages: Iterable[str], ranges: tuple[str, ...]) -> bool:
    """Whether a tag of `languages` falls in a range of `ranges` (RFC 4647 basic
    filtering: `en` takes `en` and `en-GB`, never `eng`); all lower-case."""
    for tag in languages:
        for prefix in ranges:
            if tag == prefix or tag.startswith(prefix + "-"):
                return True
    return False
