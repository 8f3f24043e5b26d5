"""The job kinds a worker can run and the periodic schedules that enqueue them.

A registry is built where the app is wired, so that handlers can close over the
stores they need; nothing is registered at import time:

    registry = Registry()

    @registry.job("purge-idempotency-keys", timeout=60.0)
    async def purge(payload: dict[str, Any]) -> None:
        await idempotency.purge()

    registry.cron("purge-idempotency-keys", "*/15 * * * *", "purge-idempotency-keys")

A job runs at least once: a worker that dies mid-job loses its lease and the job runs
again elsewhere, so every handler must be idempotent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from kurz.jobs.schedule import Cron, Every, Schedule

Handler = Callable[[dict[str, Any]], Awaitable[None]]
# After failed attempt n (1, 2, ...), how many seconds until the next.
Retries = Callable[[int], float]

# A handler that hangs would hold its worker slot for ever, its lease kept alive by
# the heartbeat; a kind that needs longer says so.
DEFAULT_TIMEOUT = 300.0


@dataclass(frozen=True, slots=True)
class Kind:
    """A registered job kind: its handler and how long one attempt may take."""

    name: str
    handler: Handler
    timeout: float | None = DEFAULT_TIMEOUT
    # Caps the attempts of every job of this kind, whatever the job was enqueued with.
    max_attempts: int | None = None
    # The kind's own retry schedule; None: the worker's Backoff.
    retries: Retries | None = None


@dataclass(frozen=True, slots=True)
class Periodic:
    """A named schedule that enqueues a job of `kind` at each tick."""

    name: str
    schedule: Schedule
    kind: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    queue: str = "default"


class Registry:
    """Job kinds by name, and periodic schedules by name."""

    def __init__(self) -> None:
        self._kinds: dict[str, Kind] = {}
        self._schedules: dict[str, Periodic] = {}

    @property
    def kinds(self) -> Mapping[str, Kind]:
        return MappingProxyType(self._kinds)

    @property
    def schedules(self) -> Mapping[str, Periodic]:
        return MappingProxyType(self._schedules)

    def add(
        self,
        kind: str,
        handler: Handler,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        max_attempts: int | None = None,
        retries: Retries | None = None,
    ) -> None:
        if kind in self._kinds:
            raise ValueError(f"job kind {kind!r} is already registered")
        if timeout is not None and not timeout > 0:
            raise ValueError(f"a timeout must be positive, got {timeout}")
        if max_attempts is not None and max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        self._kinds[kind] = Kind(kind, handler, timeout, max_attempts, retries)

    def wrap(self, around: Callable[[str, Handler], Handler]) -> None:
        """Every kind's handler replaced by `around(kind, handler)` (kurz.tracing: a
        span per job)."""
        for name, kind in self._kinds.items():
            self._kinds[name] = replace(kind, handler=around(name, kind.handler))

    def job(
        self,
        kind: str,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        max_attempts: int | None = None,
        retries: Retries | None = None,
    ) -> Callable[[Handler], Handler]:
        """Register the decorated coroutine function as the handler of `kind`."""

        def register(handler: Handler) -> Handler:
            self.add(kind, handler, timeout=timeout, max_attempts=max_attempts, retries=retries)
            return handler

        return register

    def every(
        self,
        name: str,
        seconds: float,
        kind: str,
        payload: Mapping[str, Any] | None = None,
        *,
        queue: str = "default",
    ) -> None:
        """Enqueue `kind` every `seconds`, on multiples of the interval since the epoch."""
        self._add_schedule(Periodic(name, Every(seconds), kind, dict(payload or {}), queue))

    def cron(
        self,
        name: str,
        expression: str,
        kind: str,
        payload: Mapping[str, Any] | None = None,
        *,
        queue: str = "default",
    ) -> None:
        """Enqueue `kind` at the fire times of a cron expression, read in UTC."""
        self._add_schedule(Periodic(name, Cron(expression), kind, dict(payload or {}), queue))

    def include(self, other: Registry) -> None:
        """Take in another registry's kinds and schedules, e.g. one per package."""
        clashes = (self._kinds.keys() & other._kinds.keys()) | (
            self._schedules.keys() & other._schedules.keys()
        )
        if clashes:
            raise ValueError(f"already registered: {', '.join(sorted(clashes))}")
        for kind in other._kinds.values():
            self.add(
                kind.name,
                kind.handler,
                timeout=kind.timeout,
                max_attempts=kind.max_attempts,
                retries=kind.retries,
            )
        for periodic in other._schedules.values():
            self._add_schedule(periodic)

    def _add_schedule(self, periodic: Periodic) -> None:
        # The name is the schedule's identity in the store (its last enqueued tick).
        if periodic.name in self._schedules:
            raise ValueError(f"schedule {periodic.name!r} is already registered")
        self._schedules[periodic.name] = periodic
