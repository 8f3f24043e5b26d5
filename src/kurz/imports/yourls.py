"""YOURLS, read straight from its MySQL/MariaDB database (docs/imports/yourls.md).

YOURLS keeps a link a row of `yourls_url` (its keyword the primary key) and a click a
row of `yourls_log` (its time, keyword, referrer, user agent and country). Links come
in pages by keyword, in the order of that key (binary, as YOURLS's column collation
is), each with its clicks summed by hour from the log: per hour and per UTC day, and
per day by referring host, country, browser, OS and device, as kurz counts its own
clicks (a user agent kurz takes for a bot's makes a bot click).

Times in YOURLS's tables have no zone: YOURLS (since 1.7.1) writes them in UTC, an
older or patched one in its server's local time, which the `timezone` setting names.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from pydantic import BaseModel, Field, SecretStr, field_validator
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kurz.agents import Classifier
from kurz.analytics.events import referrer_host
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
    SourceKind,
)

PAGE = 500
_WHAT = "YOURLS"
_COUNTRY = re.compile(r"[A-Z]{2}")


class YourlsSettings(BaseModel):
    database_url: SecretStr = Field(
        description="Its MySQL/MariaDB database: mysql://user:password@host:3306/yourls"
    )
    table_prefix: str = Field(
        default="yourls_",
        pattern=r"^[A-Za-z0-9_]*$",
        description="YOURLS_DB_PREFIX from its config.php.",
    )
    timezone: str = Field(
        default="UTC",
        description="The zone YOURLS wrote its times in (IANA name): UTC since 1.7.1.",
    )

    _zone = field_validator("timezone")(known_zone)


@dataclass(slots=True)
class _Tally:
    """One link's clicks, summed while the log is read."""

    logged: int = 0
    hourly: dict[datetime, list[int]] = field(default_factory=dict)
    daily: dict[date, list[int]] = field(default_factory=dict)
    breakdowns: Counter[tuple[str, date, str]] = field(default_factory=Counter)

    def clicks(self, source_id: str, recorded: int) -> Clicks | None:
        """Its Clicks item; what YOURLS counted beyond the log (pruned, or kept with
        logging off) goes to the link's total undated, so that the totals agree."""
        undated = max(0, recorded - self.logged)
        if not self.logged and not undated:
            return None
        return Clicks(
            source_id=source_id,
            daily=tuple(DayClicks(day, n, bots) for day, (n, bots) in sorted(self.daily.items())),
            hourly=tuple(HourClicks(at, n, bots) for at, (n, bots) in sorted(self.hourly.items())),
            breakdowns=tuple(
                DayBreakdown(dimension, day, value, n)
                for (dimension, day, value), n in sorted(self.breakdowns.items())
            ),
            total=undated,
        )


class YourlsSource:
    def __init__(self, settings: YourlsSettings, *, allow_private: bool) -> None:
        self.database = Database.from_url(
            settings.database_url.get_secret_value(),
            families=("mysql",),
            allow_private=allow_private,
        )
        self.zone = ZoneInfo(settings.timezone)
        prefix = settings.table_prefix
        self.urls = sa.table(
            f"{prefix}url",
            *(sa.column(name) for name in ("keyword", "url", "title", "timestamp", "clicks")),
        )
        self.log = sa.table(
            f"{prefix}log",
            *(
                sa.column(name)
                for name in ("click_time", "shorturl", "referrer", "user_agent", "country_code")
            ),
        )
        self.agents = Classifier()
        self._engine: AsyncEngine | None = None

    async def _connected_engine(self) -> AsyncEngine:
        if self._engine is None:
            self._engine = await self.database.engine()
        return self._engine

    async def total(self) -> int | None:
        engine = await self._connected_engine()
        async with connected(engine, self.database, _WHAT) as conn:
            await self._check_tables(conn)
            count = await conn.scalar(sa.select(sa.func.count()).select_from(self.urls))
        return int(count or 0)

    async def pages(self, after: str | None) -> AsyncIterator[Page]:
        engine = await self._connected_engine()
        checked = False
        while True:
            async with connected(engine, self.database, _WHAT) as conn:
                if not checked:
                    await self._check_tables(conn)
                    checked = True
                page = await self._page(conn, after)
            if page is None:
                return
            yield page
            after = page.position

    async def aclose(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def _check_tables(self, conn: AsyncConnection) -> None:
        names = (self.urls.name, self.log.name)
        lacking = await missing(conn, names)
        if lacking:
            raise self.database.failure(
                LookupError(
                    f"it has no table {' nor '.join(lacking)}: is it YOURLS's database, "
                    "with this table prefix (YOURLS_DB_PREFIX)?"
                ),
                _WHAT,
            )

    async def _page(self, conn: AsyncConnection, after: str | None) -> Page | None:
        u = self.urls.c
        query = sa.select(u.keyword, u.url, u.title, u.timestamp, u.clicks).order_by(u.keyword)
        if after is not None:
            query = query.where(u.keyword > after)
        rows = (await conn.execute(query.limit(PAGE))).all()
        if not rows:
            return None
        tallies = await self._tallies(conn, [row.keyword for row in rows])
        items: list[Item] = []
        for row in rows:
            keyword = str(row.keyword)
            items.append(
                Record(
                    place=f"keyword {keyword}",
                    source_id=keyword,
                    url=str(row.url),
                    alias=keyword,
                    title=row.title or None,
                    created_at=self._utc(row.timestamp),
                )
            )
            clicks = tallies.get(keyword, _Tally()).clicks(keyword, int(row.clicks or 0))
            if clicks is not None:
                items.append(clicks)
        return Page(items, position=str(rows[-1].keyword))

    async def _tallies(self, conn: AsyncConnection, keywords: Sequence[str]) -> dict[str, _Tally]:
        """The page's clicks from the log, summed by keyword, hour, referrer, country and
        user agent in the database and streamed: a busy link's log never sits in memory."""
        g = self.log.c
        day, hour = sa.func.date(g.click_time), sa.func.hour(g.click_time)
        grouped = (g.shorturl, day, hour, g.referrer, g.country_code, g.user_agent)
        query = (
            sa.select(*grouped, sa.func.count()).where(g.shorturl.in_(keywords)).group_by(*grouped)
        )
        tallies: dict[str, _Tally] = {}
        result = await conn.stream(query)
        async for keyword, local_day, local_hour, referrer, country, agent, n in result:
            tally = tallies.setdefault(str(keyword), _Tally())
            if not isinstance(local_day, date):
                continue  # a zero date ('0000-00-00'): one of the clicks beyond the log
            tally.logged += n
            at = self._utc(datetime.combine(local_day, time(int(local_hour))))
            assert at is not None
            at = at.replace(minute=0, second=0, microsecond=0)
            self._count(tally, at, referrer, country, agent, n)
        return tallies

    def _count(
        self,
        tally: _Tally,
        at: datetime,
        referrer: str | None,
        country: str | None,
        user_agent: str | None,
        n: int,
    ) -> None:
        # What kurz.analytics.counting makes of a click, from what YOURLS logged of it.
        day = at.date()
        agent = self.agents(user_agent or None)
        column = 1 if agent.bot else 0
        tally.hourly.setdefault(at, [0, 0])[column] += n
        tally.daily.setdefault(day, [0, 0])[column] += n
        if agent.bot:
            tally.breakdowns["bot", day, agent.browser] += n
            return
        # YOURLS logs "direct" for a click without a Referer.
        host = None if referrer == "direct" else referrer_host(referrer)
        code = (country or "").upper()
        tally.breakdowns["referrer", day, host or "(direct)"] += n
        tally.breakdowns["country", day, code if _COUNTRY.fullmatch(code) else "(unknown)"] += n
        tally.breakdowns["browser", day, agent.browser] += n
        tally.breakdowns["os", day, agent.os] += n
        tally.breakdowns["device", day, agent.device] += n

    def _utc(self, value: object) -> datetime | None:
        """A time from YOURLS's tables (naive, in its zone) in UTC; None for a zero date."""
        if not isinstance(value, datetime):
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.zone)
        return value.astimezone(UTC)


def _open(opening: Opening) -> YourlsSource:
    assert isinstance(opening.settings, YourlsSettings)
    return YourlsSource(opening.settings, allow_private=opening.allow_private)


KIND = SourceKind(
    name="yourls",
    title="YOURLS (its database)",
    source="yourls",
    takes_file=False,
    open=_open,
    settings=YourlsSettings,
    doc="docs/imports/yourls.md",
    notes=(
        "Reads YOURLS's MySQL/MariaDB database directly, read-only.",
        "Times without a zone are taken as UTC unless `timezone` names another.",
    ),
)
