"""Recording a click from a redirect's ASGI scope (or its parts): derive the event, queue it.

The redirect path calls `click()` before it answers, and never waits: the event goes
into a BatchQueue that a Drainer writes in batches (kurz.analytics.queue), and into
the click journal (kurz.analytics.journal), which outlives the process.
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Network, IPv6Network
from typing import Any

from kurz.agents import classify
from kurz.analytics.events import ClickEvent, DailySalt, Visits, from_request
from kurz.analytics.journal import ClickJournal
from kurz.analytics.queue import BatchQueue
from kurz.geo import Place
from kurz.limits import within
from kurz.types import Clock


class ClickRecorder:
    """Turns redirects into queued ClickEvents."""

    __slots__ = (
        "_clock",
        "_header",
        "_locate",
        "_salt",
        "_trusted",
        "_visits",
        "click",
        "journal",
        "queue",
    )

    def __init__(
        self,
        queue: BatchQueue[ClickEvent],
        *,
        clock: Clock,
        salt: DailySalt | None = None,
        locate: Callable[[str], Place] | None = None,
        country_header: str = "",
        trusted: tuple[IPv4Network | IPv6Network, ...] = (),
    ) -> None:
        # The recorder's batches classify user agents: their parser is loaded now, at
        # start, not by the first batch while kurz serves (a cached redirect's
        # instruction count, docs/benchmarks/history.md, issue 25's runs).
        classify.prepare()
        self.queue = queue
        self._clock = clock
        self._salt = salt or DailySalt(clock=clock)
        self._locate = locate
        self._visits = Visits(self._salt, locate=locate)
        self.journal: ClickJournal | None = None
        # A trusted proxy's header naming the visitor's country (KURZ_GEOIP_HEADER).
        # Without one, `click` reads no more headers than it did before countries.
        self._header = country_header.lower().encode("latin-1") or None
        self._trusted = trusted
        self.click: Callable[..., bool] = self._click if self._header is None else self._click_told

    def _click(self, link_id: int, scope: Any, client_ip: str, variant: str | None = None) -> bool:
        """`click`: queue the click a redirect made for `client_ip` (which the redirect
        path has worked out for its limit already); False when it was none (a HEAD: a
        link preview, an uptime check) or the queue was full (counted)."""
        if scope["method"] != "GET":
            return False
        user_agent = referer = None
        for name, value in scope["headers"]:
            if name == b"user-agent":
                user_agent = value
            elif name == b"referer":
                referer = value
        event = self._visits.event(
            link_id, self._clock(), client_ip, user_agent, referer, None, variant
        )
        return self._queue(event)

    def _click_told(
        self, link_id: int, scope: Any, client_ip: str, variant: str | None = None
    ) -> bool:
        """`click`, believing the country header when a trusted proxy sent it."""
        if scope["method"] != "GET":
            return False
        user_agent = referer = told = None
        header = self._header
        for name, value in scope["headers"]:
            if name == b"user-agent":
                user_agent = value
            elif name == b"referer":
                referer = value
            elif name == header:
                told = value
        if told is not None:
            client = scope.get("client")
            if not client or not within(client[0], self._trusted):
                told = None  # anyone can send the header; only a trusted proxy is believed
        event = self._visits.event(
            link_id, self._clock(), client_ip, user_agent, referer, told, variant
        )
        return self._queue(event)

    def visit(
        self,
        link_id: int,
        *,
        client_ip: str,
        user_agent: str | None,
        referer: str | None,
        variant: str | None = None,
    ) -> bool:
        """Queue a click described by its parts (an edge proxy's, through gRPC)."""
        country, city = (None, None) if self._locate is None else self._locate(client_ip)
        event = from_request(
            link_id=link_id,
            at=self._clock(),
            client_ip=client_ip,
            user_agent=user_agent,
            referer=referer,
            salt=self._salt,
            country=country,
            city=city,
            variant=variant,
        )
        return self._queue(event)

    def _queue(self, event: ClickEvent) -> bool:
        if not self.queue.put(event):
            return False
        journal = self.journal
        if journal is not None:
            journal.append(event)
        return True
