"""When a periodic job is due: the tick arithmetic of fixed intervals and cron expressions.

A schedule is a series of ticks in UTC. `latest(now)` is the tick a scheduler should
have enqueued by `now`; the store enqueues it only if it is later than the last tick
it enqueued for that schedule, once across all processes (JobStore.enqueue_tick).

Catch-up policy: after downtime a schedule runs ONCE, for the latest missed tick,
not once per missed tick. Periodic jobs are sweeps (purge what expired, roll up what
arrived), and one sweep now does the work of all the missed ones; replaying a day of
five-minute ticks would queue 288 identical sweeps behind each other. A schedule that
has never run is due at once for its latest tick, so a nightly purge runs on the first
start instead of up to a day later. A handler that needs the window it covers keeps
its own high-water mark rather than relying on the tick.

All times are aware datetimes in UTC; cron expressions are read in UTC too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import croniter

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _utc(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("schedules need an aware datetime, got a naive one")
    return now.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Every:
    """A tick every `seconds`, at whole multiples of the interval since the Unix epoch.

    Aligning to the epoch rather than to when a process started gives every scheduler
    the same ticks: `Every(3600)` ticks on the hour, `Every(86400)` at midnight UTC.
    """

    seconds: float

    def __post_init__(self) -> None:
        if not self._step > 0:
            raise ValueError(f"an interval must be at least 1 microsecond, got {self.seconds}")

    @property
    def _step(self) -> int:
        # Whole microseconds, so that ticks are exact (0.1 s has no exact float).
        return round(self.seconds * 1_000_000)

    def latest(self, now: datetime) -> datetime:
        """The last tick at or before `now`."""
        since = (_utc(now) - EPOCH) // _MICROSECOND
        return EPOCH + (since - since % self._step) * _MICROSECOND

    def after(self, now: datetime) -> datetime:
        """The first tick strictly after `now`."""
        return self.latest(now) + self._step * _MICROSECOND

    def __str__(self) -> str:
        return f"every {self.seconds:g} s"


@dataclass(frozen=True, slots=True)
class Cron:
    """Ticks at a cron expression's fire times (croniter's syntax; a sixth field is seconds)."""

    expression: str

    def __post_init__(self) -> None:
        if not croniter.is_valid(self.expression):
            raise ValueError(f"not a valid cron expression: {self.expression!r}")

    def latest(self, now: datetime) -> datetime:
        """The last fire time at or before `now`."""
        # croniter's previous fire time is strictly before its start; start just past
        # `now` so that a tick at exactly `now` counts as due.
        start = _utc(now) + _MICROSECOND
        return croniter(self.expression, start).get_prev(datetime).astimezone(UTC)

    def after(self, now: datetime) -> datetime:
        """The first fire time strictly after `now`."""
        return croniter(self.expression, _utc(now)).get_next(datetime).astimezone(UTC)

    def __str__(self) -> str:
        return f"cron {self.expression}"


Schedule = Every | Cron
