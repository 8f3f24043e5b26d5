"""What each line of a kurz export becomes: a link (`Record`), its statistics
(`Clicks`), or what is wrong with it, for a person (`Unreadable`)."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import ValidationError

from kurz.exports.models import (
    FORMAT,
    LINE,
    VERSION,
    BreakdownsDailyLine,
    ClicksDailyLine,
    ClicksHourlyLine,
    ExportEnd,
    ExportHeader,
    LinkLine,
    LinkLines,
)
from kurz.imports.sources import (
    Clicks,
    DayBreakdown,
    DayClicks,
    HourClicks,
    Item,
    Record,
    SourceError,
    Unreadable,
)

_STATS = {"clicks_daily", "clicks_hourly", "breakdowns_daily"}
LineKind = Literal["link", "stats", "end", "blank", "other"]


def classify(
    text: bytes | None,
) -> tuple[Literal["link", "stats", "end", "blank", "other"], str | None]:
    """What a line is, as far as its blocks go, and the link it names."""
    if text is None:
        return "other", None
    if not text.strip():
        return "blank", None
    try:
        data: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        return "other", None
    kind = data.get("type") if isinstance(data, dict) else None
    if kind == "link":
        return "link", _name(data)
    if kind in _STATS:
        return "stats", _name(data)
    if kind == "end":
        try:
            ExportEnd.model_validate(data)
        except ValidationError:
            return "other", None
        return "end", None
    return "other", None


def check_header(first: bytes) -> None:
    if not first.strip():
        raise SourceError("not a kurz export: the file is empty")
    try:
        data = orjson.loads(first)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict) or data.get("type") != "export":
        raise SourceError("not a kurz export: its first line is not the `export` header")
    if data.get("format") != FORMAT:
        raise SourceError(f"not a kurz export: its format is {data.get('format')!r}")
    if data.get("version") != VERSION:
        raise SourceError(
            f"a kurz export of version {data.get('version')!r}: "
            f"this kurz reads version {VERSION} only"
        )
    try:
        ExportHeader.model_validate(data)
    except ValidationError as exc:
        raise SourceError(f"not a kurz export: its header's {_reason(exc)}") from exc


def parse(place: str, text: bytes) -> Item | ExportEnd | ExportHeader:
    try:
        line = LINE.validate_json(text)
    except ValidationError as exc:
        return Unreadable(place=place, reason=_reason(exc), source_id=named(text))
    if isinstance(line, LinkLine):
        return _record(place, line)
    if isinstance(line, ExportEnd | ExportHeader):
        return line
    return _clicks(line)


def link(place: str, text: bytes) -> Record | Unreadable:
    """A line of a block's links: a link, or what it is instead."""
    item = parse(place, text)
    if isinstance(item, Record | Unreadable):
        return item
    if isinstance(item, ExportHeader):
        return Unreadable(place, "a second `export` header: two files joined?")
    return Unreadable(place, "a line out of its place in the file", named(text))


def _record(place: str, line: LinkLine) -> Record:
    rendered = line.model_dump(mode="json", include={"rules", "variants", "fallbacks"})
    return Record(
        place=place,
        source_id=f"{line.domain}/{line.code}",
        url=line.url,
        alias=line.code,
        drawn=not line.alias,
        domain=None if line.default_domain else line.domain,
        title=line.og_title,
        tags=tuple(line.tags),
        created_at=line.created_at,
        starts_at=line.valid_from,
        expires_at=line.expires_at,
        max_visits=line.max_visits,
        visits=line.visits,
        redirect_status=line.redirect_status,
        forward_query=line.forward_query,
        rules=rendered["rules"],
        variants=rendered["variants"],
        variant_choice=line.variant_choice,
        fallbacks=rendered["fallbacks"],
        password_hash=line.password_hash,
        og_description=line.og_description,
        og_image=line.og_image,
        deleted_at=line.deleted_at,
    )


def _clicks(line: ClicksDailyLine | ClicksHourlyLine | BreakdownsDailyLine) -> Clicks:
    source_id = _source_id(line)
    if isinstance(line, ClicksDailyLine):
        daily = [DayClicks(r.day, r.clicks, r.bot_clicks, r.uniques) for r in line.rows]
        return Clicks(source_id, daily=daily)
    if isinstance(line, ClicksHourlyLine):
        hourly = [HourClicks(r.hour, r.clicks, r.bot_clicks, r.uniques) for r in line.rows]
        return Clicks(source_id, hourly=hourly)
    values = [DayBreakdown(r.dimension, r.day, r.value, r.clicks) for r in line.rows]
    return Clicks(source_id, breakdowns=values)


def _source_id(line: LinkLines) -> str:
    """The link as a statistics line names it, and as its `link` line gives it."""
    return f"{line.domain}/{line.code}"


def named(text: bytes) -> str | None:
    """The link a line names, if it names one (a line that may not be readable)."""
    try:
        data: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return _name(data)


def _name(data: Any) -> str | None:
    if isinstance(data, dict) and all(isinstance(data.get(k), str) for k in ("domain", "code")):
        return f"{data['domain']}/{data['code']}"
    return None


def _reason(exc: ValidationError) -> str:
    """The first thing wrong with a line, for a person: which field, and why."""
    errors = exc.errors(include_url=False, include_context=False)
    first = errors[0]
    kind, where = first["type"], [str(part) for part in first["loc"]]
    if kind == "json_invalid":
        return "not JSON"
    if kind == "union_tag_not_found":
        return "no `type`"
    if kind == "union_tag_invalid":
        return "not a line of the kurz format (its `type` is unknown)"
    if not where:
        return "not a JSON object" if kind.endswith("_type") else str(first["msg"])
    # The first part of the place is the line's type (the union's tag).
    line_type, field = (where[0], ".".join(where[1:])) if len(where) > 1 else ("", where[0])
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    subject = f"{line_type} line: " if line_type else ""
    return f"{subject}{field}: {first['msg']}{more}"
