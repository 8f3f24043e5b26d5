"""Stats schemas: ClickCounts -> SeriesPoint, LinkStats; ClickTotals -> StatsSummary."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

Interval = Literal["hour", "day"]
# People's clicks by where they came from, what they ran and which A/B variant they were
# sent to; "bot" is bots' clicks by name.
Dimension = Literal["referrer", "browser", "os", "device", "country", "city", "bot", "variant"]
DIMENSIONS: tuple[Dimension, ...] = (
    "referrer", "browser", "os", "device", "country", "city", "bot", "variant",
)  # fmt: skip


class StatsBase(BaseModel):
    """Responses only. `from` is a Python keyword: start and end are rendered by alias."""


class ClickCounts(StatsBase):
    clicks: int = Field(description="Clicks by people; bots are counted apart.")
    uniques: int = Field(
        description="Distinct visitors: per hour or per UTC day for a point; for totals, "
        "the sum of the points' uniques (visitor-hours or visitor-days)."
    )
    bot_clicks: int


class SeriesPoint(ClickCounts):
    at: datetime = Field(description="The start of the hour or UTC day.")


class TopValue(StatsBase):
    value: str
    clicks: int


class TopValues(StatsBase):
    """The most frequent values per dimension over whole UTC days."""

    start: datetime = Field(serialization_alias="from", description="The first UTC day counted.")
    end: datetime = Field(
        serialization_alias="to", description="The end (exclusive) of the last UTC day."
    )
    referrer: list[TopValue] = Field(description='Referring hosts; "(direct)" for none.')
    browser: list[TopValue]
    os: list[TopValue]
    device: list[TopValue]
    country: list[TopValue] = Field(description='ISO 3166-1 alpha-2; "(unknown)" for none.')
    city: list[TopValue] = Field(
        description='The city in English and its country, "Paris, FR"; only clicks whose '
        "city is known (with KURZ_GEOIP_DB naming a city database), so none without one.",
    )
    bot: list[TopValue] = Field(description="Bots' clicks by bot name.")
    variant: list[TopValue] = Field(
        description="People's clicks by the URL of the link's A/B variant they were sent "
        "to; empty for a link without variants.",
    )


class LinkStats(StatsBase):
    code: str
    interval: Interval
    start: datetime = Field(
        serialization_alias="from", description="The range, widened to whole intervals."
    )
    end: datetime = Field(serialization_alias="to", description="The end of the range (exclusive).")
    totals: ClickCounts
    series: list[SeriesPoint] = Field(description="One point per interval, zero-filled.")
    top: TopValues


class ClickTotals(ClickCounts):
    links_clicked: int = Field(description="Links with at least one click by people.")


class LinkClicks(StatsBase):
    code: str
    clicks: int


class StatsSummary(StatsBase):
    start: datetime = Field(
        serialization_alias="from", description="The range, widened to whole UTC days."
    )
    end: datetime = Field(serialization_alias="to", description="The end of the range (exclusive).")
    totals: ClickTotals
    top_links: list[LinkClicks] = Field(description="The 10 links with the most clicks.")


class LinkBrief(StatsBase):
    """A link as an overview lists it."""

    code: str
    # The domain's host as an API caller names it; None for the default domain.
    domain: str | None
    # Where its short URL lives: `domain`, or the default domain's host.
    host: str
    url: str
    title: str | None
    created_at: datetime


class TopLink(LinkBrief):
    clicks: int


class Overview(StatsBase):
    """One user's own links at a glance: their clicks by UTC day, their most clicked
    links of all time, and the newest links."""

    start: datetime
    end: datetime
    links: int = Field(description="The user's live links.")
    # Over the range, deleted links' clicks included: they happened.
    totals: ClickCounts
    series: list[SeriesPoint]
    # Live links only, by their clicks of all time.
    top_links: list[TopLink]
    recent_links: list[LinkBrief]
