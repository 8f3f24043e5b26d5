"""The kurz format, version 1: what each line of an export holds (docs/export.md).

An export is JSON Lines: a header (`export`), then each link (`link`) followed, later
in the file, by its statistics (`clicks_daily`, `clicks_hourly`, `breakdowns_daily`),
and last an `end` line with the counts. Every line is one JSON object with a `type`,
and names the link it belongs to, so that a reader can take lines one at a time.
docs/export.schema.json is `json_schema()`, written out (a test keeps it current).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from kurz.analytics.models import Dimension
from kurz.links.models import LinkRead

FORMAT = "kurz-export"
VERSION = 1
# A line holds at most this many rows of one link's statistics; a link with more has
# several lines of that type.
ROWS_PER_LINE = 1_000
ExportFormat = Literal["jsonl", "csv"]
FORMATS: tuple[ExportFormat, ...] = ("jsonl", "csv")


class Line(BaseModel):
    # Every field is written on every line, defaults too: the schema requires them all.
    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)


class ExportHeader(Line):
    """The first line: what the file is, where it comes from and what it holds."""

    type: Literal["export"]
    format: Literal["kurz-export"]
    version: Literal[1]
    exported_at: datetime
    kurz_version: str
    base_url: str = Field(description="KURZ_BASE_URL of the kurz exported from.")
    default_domain: str = Field(description="Its default domain's host (base_url's).")
    links: Literal["all", "user"] = Field(
        description="`all`: every link, deleted ones included; `user`: one user's live links."
    )
    user: str | None = Field(description="That user's email, for `user`; else null.")
    statistics: bool = Field(
        description="Whether the links' statistics lines are in the file (an API key "
        "without `stats:read` exports links only)."
    )


class LinkLine(LinkRead, Line):
    """A link: every field the API renders (GET /api/v1/links/{code}), and the ones a
    copy needs that the API does not show."""

    type: Literal["link"]
    id: int = Field(
        description="Its id in the kurz exported from (an import names a link by domain and code)."
    )
    owner: str = Field(description="The email of the user it belongs to.")
    default_domain: bool = Field(
        description="Whether it answers on the default domain (`domain` is then its host)."
    )
    visits: int = Field(description="The visits used of `max_visits` (counted only with a cap).")
    password_hash: str | None = Field(
        description="The Argon2id hash of its password (PHC string); null: none."
    )
    deleted_at: datetime | None = Field(
        description="When it was deleted: a tombstone, whose code is never given out again."
    )


class LinkLines(Line):
    """The link a statistics line belongs to, as its `link` line names it."""

    domain: str
    default_domain: bool
    code: str


class DailyClicks(Line):
    day: date = Field(description="A UTC day.")
    clicks: int = Field(ge=0, description="Clicks by people.")
    uniques: int = Field(ge=0, description="Distinct visitors of the day.")
    bot_clicks: int = Field(ge=0)


class HourlyClicks(Line):
    hour: datetime = Field(description="The start of a UTC hour.")
    clicks: int = Field(ge=0)
    uniques: int = Field(ge=0, description="Distinct visitors of the hour.")
    bot_clicks: int = Field(ge=0)


class DailyBreakdown(Line):
    dimension: Dimension
    day: date
    value: str
    clicks: int = Field(ge=1, description="People's clicks; bots' for dimension `bot`.")


class ClicksDailyLine(LinkLines):
    """Rows of link_clicks_daily, by day."""

    type: Literal["clicks_daily"]
    rows: list[DailyClicks] = Field(min_length=1, max_length=ROWS_PER_LINE)


class ClicksHourlyLine(LinkLines):
    """Rows of link_clicks_hourly, by hour."""

    type: Literal["clicks_hourly"]
    rows: list[HourlyClicks] = Field(min_length=1, max_length=ROWS_PER_LINE)


class BreakdownsDailyLine(LinkLines):
    """Rows of link_breakdowns_daily, by dimension, day and value."""

    type: Literal["breakdowns_daily"]
    rows: list[DailyBreakdown] = Field(min_length=1, max_length=ROWS_PER_LINE)


class ExportEnd(Line):
    """The last line: what the file holds. A file without it was cut short."""

    type: Literal["end"]
    links: int = Field(description="`link` lines, tombstones included.")
    deleted_links: int = Field(description="Of them, tombstones.")
    clicks_daily: int = Field(description="Rows over all `clicks_daily` lines.")
    clicks_hourly: int = Field(description="Rows over all `clicks_hourly` lines.")
    breakdowns_daily: int = Field(description="Rows over all `breakdowns_daily` lines.")


ExportLine = Annotated[
    ExportHeader | LinkLine | ClicksDailyLine | ClicksHourlyLine | BreakdownsDailyLine | ExportEnd,
    Field(discriminator="type"),
]
LINE: TypeAdapter[ExportLine] = TypeAdapter(ExportLine)


def json_schema() -> dict[str, Any]:
    """A JSON Schema (2020-12) that every line of a version 1 export satisfies."""
    schema = LINE.json_schema(mode="serialization")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "A line of a kurz export (the kurz format, version 1)",
        "description": "Each line of the file is one JSON object satisfying this schema; "
        "the first is an `export` line, the last an `end` line (docs/export.md).",
        **schema,
    }
