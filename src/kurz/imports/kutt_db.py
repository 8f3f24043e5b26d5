"""Kutt (v2 and v3), read straight from its PostgreSQL, SQLite or MySQL/MariaDB database
(docs/imports/kutt.md, "From its database").

Kutt keeps a link a row of `links`, its custom domain in `domains`, and its visits in
`visits`: a row per link and hour (the hour it was made in), with that hour's count,
its counts by browser and OS in columns (br_chrome, os_windows, ...) and by country
and referrer in JSON objects. Links come in pages by their id; a link's source id is
its `uuid`, the `id` Kutt's API gives it, so that importing from the API and from the
database name a link alike.

A banned link and a password-protected one are not carried over (Unreadable): the
first answers only with Kutt's "banned" page, and the second's password is a bcrypt
hash, which kurz cannot check, so it would open without one.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from pydantic import BaseModel, Field, SecretStr, field_validator
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kurz.imports.databases import Database, connected, known_zone, missing
from kurz.imports.sources import (
    Clicks,
    DayBreakdown,
    DayClicks,
    HourClicks,
    Item,
    Opening,
    Page,
    Record,
    SourceError,
    SourceKind,
    Unreadable,
)

PAGE = 500
_WHAT = "Kutt"
_TABLES = ("links", "domains", "visits")
# Kutt's counting columns, and the values kurz's own counting (ua-parser's families)
# gives the same browsers and systems.
BROWSERS: Mapping[str, str] = {
    "br_chrome": "Chrome",
    "br_edge": "Edge",
    "br_firefox": "Firefox",
    "br_ie": "IE",
    "br_opera": "Opera",
    "br_safari": "Safari",
    "br_other": "Other",
}
SYSTEMS: Mapping[str, str] = {
    "os_android": "Android",
    "os_ios": "iOS",
    "os_linux": "Linux",
    "os_macos": "Mac OS X",
    "os_windows": "Windows",
    "os_other": "Other",
}
_COUNTRY = re.compile(r"[a-z]{2}", re.IGNORECASE)


class KuttSettings(BaseModel):
    database_url: SecretStr = Field(
        description="Its database: postgresql://user:password@host:5432/kutt, "
        "mysql://user:password@host:3306/kutt, or sqlite:///path/to/db/data "
        "(`kurz import` only)"
    )
    timezone: str = Field(
        default="UTC",
        description="MySQL/MariaDB only: the zone Kutt's server wrote its times in (IANA "
        "name); PostgreSQL's and SQLite's are UTC.",
    )

    _zone = field_validator("timezone")(known_zone)


@dataclass(slots=True)
class _Tally:
    """One link's visits, summed while its rows are read."""

    counted: int = 0
    hourly: Counter[datetime] = field(default_factory=Counter)
    daily: Counter[date] = field(default_factory=Counter)
    breakdowns: Counter[tuple[str, date, str]] = field(default_factory=Counter)

    def clicks(self, source_id: str, visit_count: int) -> Clicks | None:
        # visit_count is counted apart from the visits rows: what it holds beyond
        # them goes to the link's total, undated.
        undated = max(0, visit_count - self.counted)
        if not self.counted and not undated:
            return None
        return Clicks(
            source_id=source_id,
            daily=tuple(DayClicks(day, n) for day, n in sorted(self.daily.items())),
            hourly=tuple(HourClicks(at, n) for at, n in sorted(self.hourly.items())),
            breakdowns=tuple(
                DayBreakdown(dimension, day, value, n)
                for (dimension, day, value), n in sorted(self.breakdowns.items())
            ),
            total=undated,
        )


class KuttSource:
    def __init__(self, settings: KuttSettings, *, allow_private: bool) -> None:
        self.database = Database.from_url(
            settings.database_url.get_secret_value(),
            families=("postgresql", "sqlite", "mysql"),
            allow_private=allow_private,
        )
        # Kutt on MySQL writes its server's local time, without a zone (utils.dateToUTC).
        self.zone = ZoneInfo(settings.timezone) if self.database.family == "mysql" else UTC
        self.links = sa.table(
            "links",
            *(
                sa.column(name)
                for name in (
                    "id", "uuid", "address", "target", "description", "expire_in",
                    "password", "banned", "domain_id", "visit_count", "created_at",
                )
            ),
        )  # fmt: skip
        self.domains = sa.table("domains", sa.column("id"), sa.column("address"))
        self.visits = sa.table(
            "visits",
            *(
                sa.column(name)
                for name in ("id", "link_id", "created_at", "total", "countries", "referrers")
            ),
            *(sa.column(name) for name in (*BROWSERS, *SYSTEMS)),
        )
        self._engine: AsyncEngine | None = None

    async def _connected_engine(self) -> AsyncEngine:
        if self._engine is None:
            self._engine = await self.database.engine()
        return self._engine

    async def total(self) -> int | None:
        engine = await self._connected_engine()
        async with connected(engine, self.database, _WHAT) as conn:
            await self._check_tables(conn)
            count = await conn.scalar(sa.select(sa.func.count()).select_from(self.links))
        return int(count or 0)

    async def pages(self, after: str | None) -> AsyncIterator[Page]:
        engine = await self._connected_engine()
        last = _position(after)
        checked = False
        while True:
            async with connected(engine, self.database, _WHAT) as conn:
                if not checked:
                    await self._check_tables(conn)
                    checked = True
                page = await self._page(conn, last)
            if page is None:
                return
            yield page
            last = int(page.position)

    async def aclose(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def _check_tables(self, conn: AsyncConnection) -> None:
        lacking = await missing(conn, _TABLES)
        if lacking:
            raise self.database.failure(
                LookupError(f"it has no table {' nor '.join(lacking)}: is it Kutt's database?"),
                _WHAT,
            )

    async def _page(self, conn: AsyncConnection, after: int) -> Page | None:
        link, domain = self.links.c, self.domains.c
        query = (
            sa.select(
                link.id, link.uuid, link.address, link.target, link.description,
                link.expire_in, link.password, link.banned, link.visit_count,
                link.created_at, domain.address.label("domain"),
            )
            .select_from(self.links.outerjoin(self.domains, domain.id == link.domain_id))
            .where(link.id > after)
            .order_by(link.id)
            .limit(PAGE)
        )  # fmt: skip
        rows = (await conn.execute(query)).all()
        if not rows:
            return None
        readable = [row for row in rows if not row.banned and not row.password]
        tallies = await self._tallies(conn, [row.id for row in readable])
        items: list[Item] = []
        for row in rows:
            source_id = str(row.uuid)
            place = f"link {row.domain}/{row.address}" if row.domain else f"link {row.address}"
            if row.banned:
                reason = "banned in Kutt (it shows Kutt's banned page, not its target)"
                items.append(Unreadable(place, reason, source_id))
                continue
            if row.password:
                reason = (
                    "password-protected in Kutt: its password is a bcrypt hash kurz cannot "
                    "check, and the link would open without one"
                )
                items.append(Unreadable(place, reason, source_id))
                continue
            items.append(
                Record(
                    place=place,
                    source_id=source_id,
                    url=str(row.target),
                    alias=str(row.address),
                    domain=row.domain or None,
                    title=row.description or None,
                    created_at=_utc(row.created_at, self.zone),
                    expires_at=_utc(row.expire_in, self.zone),
                )
            )
            clicks = tallies.get(row.id, _Tally()).clicks(source_id, int(row.visit_count or 0))
            if clicks is not None:
                items.append(clicks)
        return Page(items, position=str(rows[-1].id))

    async def _tallies(self, conn: AsyncConnection, link_ids: Sequence[int]) -> dict[int, _Tally]:
        """The page's visits rows, streamed and summed per link."""
        tallies: dict[int, _Tally] = {}
        if not link_ids:
            return tallies
        v = self.visits.c
        columns = [v.link_id, v.created_at, v.total, v.countries, v.referrers]
        columns += [v[name] for name in (*BROWSERS, *SYSTEMS)]
        query = sa.select(*columns).where(v.link_id.in_(link_ids)).order_by(v.link_id, v.id)
        result = await conn.stream(query)
        async for row in result.mappings():
            _count(tallies.setdefault(row["link_id"], _Tally()), row, self.zone)
        return tallies


def _count(tally: _Tally, row: RowMapping, zone: tzinfo) -> None:
    total = int(row["total"] or 0)
    tally.counted += total
    at = _utc(row["created_at"], zone)
    if at is None or not total:
        return  # counted in the link's total alone
    # Kutt adds a visit to its link's row of the hour the visit falls in.
    hour = at.replace(minute=0, second=0, microsecond=0)
    day = hour.date()
    tally.hourly[hour] += total
    tally.daily[day] += total
    for name, value in BROWSERS.items():
        if row[name]:
            tally.breakdowns["browser", day, value] += int(row[name])
    for name, value in SYSTEMS.items():
        if row[name]:
            tally.breakdowns["os", day, value] += int(row[name])
    for key, n in _counts(row["countries"]).items():
        # Kutt keeps lower-case codes, and "unknown" where it found none.
        country = key.upper() if _COUNTRY.fullmatch(key) else "(unknown)"
        tally.breakdowns["country", day, country] += n
    for key, n in _counts(row["referrers"]).items():
        # Kutt keeps the host without "www.", its dots written "[dot]" (a JSON key
        # path would split on them), and "direct" where there was none.
        host = key.replace("[dot]", ".").lower()
        tally.breakdowns["referrer", day, "(direct)" if host in {"", "direct"} else host] += n


def _counts(value: object) -> dict[str, int]:
    """A JSON object of counts as Kutt stores it (jsonb, or JSON text in SQLite);
    nothing when it is not one."""
    if isinstance(value, str | bytes):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    if not isinstance(value, dict):
        return {}
    return {
        str(key): int(n)
        for key, n in value.items()
        if isinstance(n, int | float) and not isinstance(n, bool) and n > 0
    }


def _utc(value: object, zone: tzinfo) -> datetime | None:
    """A time as Kutt's database holds it: timestamptz (PostgreSQL), text in UTC
    (SQLite: "2025-01-02 13:00:05"), a datetime in `zone` (MySQL), or milliseconds since
    the epoch."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            value = datetime.fromtimestamp(value / 1000, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


def _position(after: str | None) -> int:
    if after is None:
        return 0
    try:
        return int(after)
    except ValueError:
        raise SourceError(f"{after!r} is not a position in Kutt's links (a link's id)") from None


def _open(opening: Opening) -> KuttSource:
    assert isinstance(opening.settings, KuttSettings)
    return KuttSource(opening.settings, allow_private=opening.allow_private)


KIND = SourceKind(
    name="kutt",
    title="Kutt (its database)",
    source="kutt",
    takes_file=False,
    open=_open,
    settings=KuttSettings,
    doc="docs/imports/kutt.md",
    notes=(
        "Reads Kutt's PostgreSQL, SQLite or MySQL/MariaDB database directly, read-only.",
        "Banned and password-protected links are reported, not imported.",
    ),
)
