"""Date-times as kurz's APIs take them: RFC 3339 strings with an offset, that UTC can hold."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BeforeValidator

# A date and a time: pydantic would otherwise read a number, or a string of digits,
# as Unix time, which no kurz client is told.
_DATE_TIME = re.compile(r"\s*\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")
RFC3339_EXAMPLE = "2030-01-01T00:00:00Z"


def rfc3339_only(value: object) -> object:
    """Let through a datetime, or a string that starts as an RFC 3339 date-time."""
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DATE_TIME.match(value):
        return value
    raise ValueError(f"must be an RFC 3339 date-time with an offset, e.g. {RFC3339_EXAMPLE}")


def in_utc_range(value: datetime) -> datetime:
    """Refuse an instant past 9999-12-31T23:59:59Z or before year 1 in UTC, which a
    date-time with a large offset can name and no database column can store."""
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range: in UTC it falls outside the years 1 to 9999") from None
    return value


DateTime = Annotated[AwareDatetime, BeforeValidator(rfc3339_only), AfterValidator(in_utc_range)]
