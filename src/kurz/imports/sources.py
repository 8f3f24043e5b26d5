"""What an import reads from: a source, read a page at a time (docs/imports.md).

A source kind (`SourceKind`) opens a `Source` from what the import was given: its
settings (a database URL, an API's address and token) and, for a file, the file. A
source yields `Page`s; each holds items, in the order the source has them, and the
`position` to go on from after it. The import writes a page in one transaction with
that position, so that a worker killed in the middle opens the source again with the
last position written (`after`) and reads on from there: a source must give, for the
same input and `after`, the items that followed it the first time.

An item is a link (`Record`), the clicks of a link read earlier (`Clicks`), or a
place the source could not read as a link (`Unreadable`). Sources carry no kurz
logic: they say what the other system holds, and the import decides (an alias taken,
a URL refused, a link imported before) and reports.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel

# What a taken alias does: the row is skipped, its alias renamed with a suffix
# (alias-2, alias-3, ...), or the row fails.
OnConflict = Literal["skip", "rename", "fail"]
ON_CONFLICT: tuple[OnConflict, ...] = ("skip", "rename", "fail")


@dataclass(frozen=True, slots=True)
class Record:
    """A link as the source holds it. `None` (and the defaults) mean "not given": the
    import then does what a create without the field does."""

    # Where the source has it, for the report: "line 12", "bit.ly/3xYz", "keyword abc".
    place: str
    # Its id in the source, unique there and the same on every read: importing the
    # source again skips a link whose (source, source id) was imported before.
    source_id: str
    url: str
    # Its short code there; None: kurz makes one.
    alias: str | None = None
    # Whether that code was drawn by the system rather than chosen by a person: kept
    # all the same, but the link is not shown as having an alias (LinkRead.alias).
    drawn: bool = False
    # The host it answers on when that is not the source's default domain; None: the
    # import's domain (the default one unless the import names another).
    domain: str | None = None
    title: str | None = None
    tags: Sequence[str] = ()
    created_at: datetime | None = None
    starts_at: datetime | None = None
    expires_at: datetime | None = None
    # The rest only kurz's own export holds (kurz.exports.models.LinkLine).
    max_visits: int | None = None
    visits: int = 0
    redirect_status: int | None = None
    forward_query: bool | None = None
    # As the API renders them (LinkRead.rules, .variants, .variant_choice, .fallbacks).
    rules: Sequence[Mapping[str, Any]] = ()
    variants: Sequence[Mapping[str, Any]] | None = None
    variant_choice: str | None = None
    fallbacks: Mapping[str, Any] | None = None
    password_hash: str | None = None
    og_description: str | None = None
    og_image: str | None = None
    deleted_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DayClicks:
    day: date
    clicks: int
    bot_clicks: int = 0
    # Distinct visitors; a source that does not know them gives None (counted as
    # `clicks`: each click a visitor).
    uniques: int | None = None


@dataclass(frozen=True, slots=True)
class HourClicks:
    hour: datetime
    clicks: int
    bot_clicks: int = 0
    uniques: int | None = None


@dataclass(frozen=True, slots=True)
class DayBreakdown:
    # A kurz.analytics.models.Dimension: referrer, country, browser, os, device, bot, ...
    dimension: str
    day: date
    value: str
    clicks: int


@dataclass(frozen=True, slots=True)
class Clicks:
    """Statistics of the link the source gave with `source_id`, in the SAME page as
    that link's Record (after it): a link and all its statistics are written in one
    transaction, so that no reader sees a link with part of its statistics (the stats'
    settled sums, kurz.analytics.settled, count on a day's rows never changing without
    its daily row changing too). Added only when this import made that link. A link may
    have several Clicks items; their rows add up."""

    source_id: str
    daily: Sequence[DayClicks] = ()
    hourly: Sequence[HourClicks] = ()
    breakdowns: Sequence[DayBreakdown] = ()
    # A count of all time with no days (a source that keeps no more): it goes to the
    # link's total only, not into any day.
    total: int = 0


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A place the source holds that is not a link kurz can read: reported as failed."""

    place: str
    reason: str
    source_id: str | None = None


Item = Record | Clicks | Unreadable


@dataclass(frozen=True, slots=True)
class Page:
    items: Sequence[Item]
    # What the source is opened with (`after`) to go on after this page.
    position: str


class Source(Protocol):
    """A source opened for one import."""

    async def total(self) -> int | None:
        """How many links it holds, if it can tell cheaply (progress); else None."""
        ...

    def pages(self, after: str | None) -> AsyncIterator[Page]:
        """Its pages from the start (`after` None) or after a page's `position`. A
        source that cannot be read at all (a file that is not CSV, a database that does
        not answer, a token refused) raises `SourceError`."""
        ...

    async def aclose(self) -> None: ...


class SourceError(Exception):
    """The source cannot be read (not a row: the whole of it). The message says why,
    for a person: the import fails with it."""


@dataclass(frozen=True, slots=True)
class Opening:
    """What a source kind opens a source with."""

    # Its settings (SourceKind.settings), validated.
    settings: BaseModel
    # The uploaded file, on local disk, for a kind that takes one; else None.
    file: Path | None = None
    # For sources that fetch over HTTP: may they reach private addresses
    # (KURZ_IMPORT_ALLOW_PRIVATE; kurz.webhooks.addresses decides what is private).
    allow_private: bool = False


class NoSettings(BaseModel):
    """A kind that needs nothing but its file."""


@dataclass(frozen=True, slots=True)
class SourceKind:
    """A kind of source an import can read: registered in kurz.imports.kinds."""

    # How an import names it (`kurz import ...`, POST /api/v1/imports `source`).
    name: str
    # For people: "Bitly (CSV export)".
    title: str
    # What link_sources records: kinds that name links alike share it (Bitly's CSV
    # export and its API both say "bitly", with the same source ids).
    source: str
    takes_file: bool
    open: Callable[[Opening], Source]
    # What it needs besides a file; fields holding secrets are pydantic SecretStr.
    settings: type[BaseModel] = NoSettings
    # Where docs/imports/ says what it carries over.
    doc: str = ""
    notes: Sequence[str] = field(default_factory=tuple)
