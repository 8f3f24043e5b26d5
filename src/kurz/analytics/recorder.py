"""Recording a click from a redirect's ASGI scope (or its parts): derive the event, queue it.

The redirect path calls `click()` before it answers, and never waits: the event goes
into a BatchQueue that a Drainer writes in batches (kurz.analytics.queue), and into
the click journal (kurz.analytics.journal), which outlives the process.
"""

from __future__ import annotations

from typing import Any

from kurz.analytics.events import ClickEvent, DailySalt, Visits, from_request
from kurz.analytics.journal import ClickJournal
from kurz.analytics.queue import BatchQueue
from kurz.types import Clock


class ClickRecorder:
    """Turns redirects into queued ClickEvents."""

    __slots__ = ("_clock", "_salt", "_visits", "journal", "queue")

    def __init__(
        self,
        queue: BatchQueue[ClickEvent],
        *,
        clock: Clock,
        salt: DailySalt | None = None,
    ) -> None:
        self.queue = queue
        self._clock = clock
        self._salt = salt or DailySalt(clock=clock)
        self._visits = Visits(self._salt)
        self.journal: ClickJournal | None = None

    def click(self, link_id: int, scope: Any, client_ip: str) -> bool:
        """Queue the click a redirect made for `client_ip` (which the redirect path has
        worked out for its limit already); False when it was none (a HEAD: a link
        preview, an uptime check) or the queue was full (counted)."""
        if scope["method"] != "GET":
            return False
        user_agent = referer = None
        for name, value in scope["headers"]:
            if name == b"user-agent":
                user_agent = value
            elif name == b"referer":
                referer = value
        event = self._visits.event(link_id, self._clock(), client_ip, user_agent, referer)
        return self._queue(event)

    def visit(
        self, link_id: int, *, client_ip: str, user_agent: str | None, referer: str | None
    ) -> bool:
        """Queue a click described by its parts (an edge proxy's, through gRPC)."""
        event = from_request(
            link_id=link_id,
            at=self._clock(),
            client_ip=client_ip,
            user_agent=user_agent,
            referer=referer,
            salt=self._salt,
        )
        return self._queue(event)

    def _queue(self, event: ClickEvent) -> bool:
        if not self.queue.put(event):
            return False
        journal = self.journal
        if journal is not None:
            journal.append(event)
        return True
