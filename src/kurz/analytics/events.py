"""What a click is: one redirect, reduced to the dimensions kurz counts.

The redirect path builds a ClickEvent from the request (`from_request`) and hands it on; everything
here is pure and cheap (docs/analytics.md, "The path of a click"). The
client's IP address enters only a salted hash that changes every UTC day, and is
never stored.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import orjson

from kurz.agents import DeviceClass, classify
from kurz.cache import Absent, LRUCache
from kurz.clock import system_clock
from kurz.geo import Place, told_country
from kurz.types import Clock

log = logging.getLogger("kurz.analytics")

_DAY = 86_400
# 64 bits: two visitors of one link on one day collide with odds of about
# n**2 / 2**65: one in 37 million for a million visitors.
_VISITOR_BYTES = 8


# One click, as queued for the rollups: no IP address, no full user agent. A plain
# tuple, its fields in the order of FIELDS (the country is ISO 3166-1 alpha-2, the
# city its English name, each only where kurz.geo knows it; the variant is the URL of
# the link's A/B variant the click was sent to, for a link that has them). Fields are
# added at the end, so that events journaled or queued before are read with `complete`.
#
# Not a NamedTuple or a dataclass: the collector stops tracking a plain tuple of
# numbers and strings at its first collection, and never stops tracking those. Tens
# of thousands of events wait in the queue at full speed; tracked, each batch of
# them would reach the oldest generation and set off a full collection of the whole
# process, which held up the redirects behind it (docs/analytics.md, ADR 0010).
ClickEvent = tuple[
    int, float, str | None, str, str, DeviceClass, bool, str | None, str, str | None, str | None
]
FIELDS = (
    "link_id", "at", "referrer_host", "browser", "os", "device", "bot", "country", "visitor",
    "city", "variant",
)  # fmt: skip
VARIANT = FIELDS.index("variant")


def click_event(
    *,
    link_id: int,
    at: float,
    browser: str,
    os: str,
    device: DeviceClass,
    bot: bool,
    visitor: str,
    referrer_host: str | None = None,
    country: str | None = None,
    city: str | None = None,
    variant: str | None = None,
) -> ClickEvent:
    """A ClickEvent from its fields by name (the redirect path uses `from_request`)."""
    return (link_id, at, referrer_host, browser, os, device, bot, country, visitor, city, variant)


def complete(fields: Sequence[Any]) -> ClickEvent:
    """An event as read back (JSON, a journal), those of an older kurz with the fields
    added since as None."""
    event = tuple(fields)
    if len(event) < len(FIELDS):
        event += (None,) * (len(FIELDS) - len(event))
    return event


def from_request(
    *,
    link_id: int,
    at: float,
    client_ip: str,
    user_agent: str | None,
    referer: str | None,
    salt: DailySalt,
    country: str | None = None,
    city: str | None = None,
    variant: str | None = None,
) -> ClickEvent:
    """The click a redirect makes; the client's IP address goes into `visitor` only."""
    agent = classify(user_agent)
    day, key = salt.current()
    if referer:
        cached = _referrer_hosts.lookup(referer)
        if isinstance(cached, Absent):
            host = referrer_host(referer)
            if len(referer) <= _MAX_CACHED_REFERER:
                _referrer_hosts.put(referer, host)
        else:
            host = cached
    else:
        host = None
    return (
        link_id,
        at,
        host,
        agent.browser,
        agent.os,
        agent.device,
        agent.bot,
        country,
        visitor_hash(client_ip, user_agent, day, key),
        city,
        variant,
    )


# What the clicks of one visitor (address, user agent, referrer) on one day have in
# common: every field of a ClickEvent after `at` (the variant: None).
_Common = tuple[str | None, str, str, DeviceClass, bool, str | None, str, str | None, str | None]
# Requests whose user agent or referrer is longer than this are derived afresh each
# time, not kept: the cache's memory stays bounded by entries of a few hundred bytes.
_MAX_KEPT_FIELD = 512


class Visits:
    """Clicks made from the parts of a request, each visitor's derived once a day.

    `from_request` parses the user agent and the referrer (from caches of their own)
    and hashes the visitor on every click (docs/analytics.md). A visitor's redirects
    on one day share all of it, so this keeps it per (address, user agent, referrer),
    and a click costs one dict lookup. The dict is emptied when the day (or its salt) changes,
    since every visitor hash changes with it, and when it is full: a flood of new
    visitors costs what `from_request` does, and no more memory than `max_entries`
    small entries. The click is the one `from_request` would make
    (tests/unit/analytics/test_events.py holds them equal).
    """

    __slots__ = ("_entry", "_known", "_locate", "_max", "_salt", "_until")

    def __init__(
        self,
        salt: DailySalt,
        max_entries: int = 10_000,
        *,
        locate: Callable[[str], Place] | None = None,
    ) -> None:
        self._salt = salt
        self._max = max_entries
        # The country and city of an address (kurz.geo's `place`), asked once per
        # visitor and day.
        self._locate = locate
        self._known: dict[tuple[str, bytes | None, bytes | None], _Common] = {}
        # The salt's entry the dict was filled under, and when its day ends.
        self._entry: object = None
        self._until = -1.0

    def __len__(self) -> int:
        return len(self._known)

    def event(
        self,
        link_id: int,
        at: float,
        client_ip: str,
        user_agent: bytes | None,
        referer: bytes | None,
        country: bytes | None = None,
        variant: str | None = None,
    ) -> ClickEvent:
        """The click of a redirect at `at`, its header values as the request sent them;
        `country`, a trusted proxy's word for where the visitor is (kurz.geo otherwise);
        `variant`, the link's variant it was sent to.
        """
        if at >= self._until or self._salt.entry is not self._entry:
            self._renew()
        key = (client_ip, user_agent, referer)
        common = self._known.get(key)
        if common is None:
            common = self._derive(client_ip, user_agent, referer, country)
            if (user_agent is None or len(user_agent) <= _MAX_KEPT_FIELD) and (
                referer is None or len(referer) <= _MAX_KEPT_FIELD
            ):
                if len(self._known) >= self._max:
                    self._known.clear()
                self._known[key] = common
        # Concatenated, not unpacked: (a, b, *c) builds a list first, on every click.
        event = (link_id, at) + common  # noqa: RUF005
        if variant is None:
            return event
        # The variant is the last field, and None in what a visitor's clicks share.
        chosen: ClickEvent = event[:VARIANT] + (variant,)  # type: ignore[assignment]  # noqa: RUF005
        return chosen

    def _renew(self) -> None:
        self._salt.current()
        self._entry = entry = self._salt.entry
        self._until = (entry[0] + 1) * _DAY
        self._known.clear()

    def _derive(
        self,
        client_ip: str,
        user_agent: bytes | None,
        referer: bytes | None,
        told: bytes | None,
    ) -> _Common:
        country = told_country(told)
        city = None
        if self._locate is not None:
            found, city = self._locate(client_ip)
            if country is None:
                country = found
            elif found != country:
                city = None  # a city of another country than the proxy's
        event = from_request(
            link_id=0,
            at=0.0,
            client_ip=client_ip,
            user_agent=None if user_agent is None else user_agent.decode("latin-1"),
            referer=None if referer is None else referer.decode("latin-1"),
            salt=self._salt,
            country=country,
            city=city,
        )
        return event[2:]


def encode(events: Sequence[ClickEvent]) -> str:
    """Events as compact JSON, one array of fields per event: how a batch goes into the
    Redis Stream and into the click log (click_batches.events).

    orjson writes what `json.dumps(events, separators=(",", ":"))` writes, except that
    it leaves non-ASCII characters unescaped, at a small part of its cost
    (docs/analytics.md, "What is stored"). It takes only valid UTF-8, so a field
    holding a lone surrogate falls back to json, which escapes it.
    """
    try:
        return orjson.dumps(events).decode()
    except orjson.JSONEncodeError:
        return json.dumps(events, separators=(",", ":"))


def decode(data: str | bytes) -> list[ClickEvent]:
    """Events as `encode` wrote them, or as an older kurz did (fewer fields)."""
    return [complete(fields) for fields in json.loads(data)]


# --- Referrer -----------------------------------------------------------------

# Since browsers default to strict-origin-when-cross-origin, a Referer from another
# site is its origin alone ("https://news.example/"): few distinct values, worth
# caching, as parsing one costs more than a cache hit.
_referrer_hosts: LRUCache[str, str | None] = LRUCache(10_000)
_MAX_CACHED_REFERER = 512
_HOST_NAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?")
_MAX_HOST = 253


def referrer_host(referer: str | None) -> str | None:
    """The site a click came from, or None when absent, relative, not http(s) or invalid."""
    if not referer:
        return None
    try:
        parts = urlsplit(referer.strip())
        # Lowercased, without userinfo, port or an IPv6 address's brackets.
        host = parts.hostname
    except ValueError:  # e.g. an unclosed "[" of an IPv6 address
        return None
    if parts.scheme not in ("http", "https") or not host or len(host) > _MAX_HOST:
        return None
    if ":" in host:
        try:
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            return None
    if not _HOST_NAME.fullmatch(host):
        return None
    host = host.rstrip(".")
    # www.example.com and example.com are one site to whoever reads the breakdown;
    # kept apart, they would split its row in two.
    if host.startswith("www."):
        host = host[4:]
    return host or None


# --- Unique visitors ------------------------------------------------------------


def visitor_hash(ip: str, user_agent: str | None, day: str, salt: bytes) -> str:
    """A visitor's pseudonym for one day: keyed BLAKE2b of day, IP and user agent.

    This is the only use of the client's IP address, which is never stored. With the
    salt random and forgotten after its day, the hash cannot be reversed by trying all
    IPv4 addresses, nor linked to the same visitor's hash on another day. BLAKE2b's
    keyed mode is a MAC by design (RFC 7693), as strong here as HMAC-SHA256 and
    cheaper on every redirect (ADR 0010).
    """
    message = f"{day}|{ip}|{user_agent or ''}".encode("utf-8", "surrogatepass")
    return hashlib.blake2b(message, key=salt, digest_size=_VISITOR_BYTES).hexdigest()


class DailySalt:
    """The salt of the current UTC day; another each midnight, the old one forgotten.

    Every kurz process must hash with the same salt, or a visitor served by two of
    them counts twice: the salts come from the database (kurz.analytics.salts, which
    calls `share`) before a day begins. A process that could not reach the database
    makes up a salt of its own for the day, and says so in its log.
    """

    __slots__ = ("_clock", "_current", "_lock", "_random", "_shared")

    def __init__(
        self,
        clock: Clock = system_clock,
        random: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        self._clock = clock
        self._random = random
        self._lock = threading.Lock()
        # (days since the epoch, "YYYY-MM-DD", salt), replaced whole so that a reader
        # never sees one day's date with another day's salt.
        self._current: tuple[int, str, bytes] = (-1, "", b"")
        self._shared: dict[int, bytes] = {}

    def current(self) -> tuple[str, bytes]:
        """Today's date in UTC ("2024-05-31") and its salt."""
        number = int(self._clock() // _DAY)
        entry = self._current
        # Only forward: a clock stepped back must not bring a second salt for one day.
        if number > entry[0]:
            entry = self._rotate(number)
        return entry[1], entry[2]

    def visitor(self, ip: str, user_agent: str | None) -> str:
        """Today's hash of a visitor (`visitor_hash`): what sticky A/B variants are
        chosen by (kurz.links.visit.Visitors)."""
        day, salt = self.current()
        return visitor_hash(ip, user_agent, day, salt)

    @property
    def entry(self) -> tuple[int, str, bytes]:
        """(days since the epoch, date, salt) as last used; replaced whole, never
        changed, when the day turns or a shared salt replaces a made-up one."""
        return self._current

    def share(self, salts: dict[int, bytes]) -> None:
        """The salts all processes use, by day number (days since the epoch)."""
        with self._lock:
            self._shared = dict(salts)
            number, day, salt = self._current
            shared = self._shared.get(number)
            if shared is not None and shared != salt:
                # Today's salt was made up here while the database was out of reach.
                self._current = (number, day, shared)

    def _rotate(self, number: int) -> tuple[int, str, bytes]:
        # Locked, so that threads crossing midnight together agree on one salt.
        with self._lock:
            if number > self._current[0]:
                day = time.strftime("%Y-%m-%d", time.gmtime(number * _DAY))
                salt = self._shared.get(number)
                if salt is None:
                    log.warning(
                        "no shared visitor salt for %s: this process uses its own, so "
                        "visitors it serves may be counted again by others",
                        day,
                    )
                    salt = self._random(32)
                self._current = (number, day, salt)
            return self._current
