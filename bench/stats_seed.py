"""Click rollups for the stats bench: one busy link over 90 days, among many quieter ones.

The rows are what kurz.analytics.store would have written: hourly and daily totals, and
daily breakdowns whose clicks sum, per dimension, to the day's clicks (bots': to its bot
clicks). They are generated and inserted day by day, every link's rows of a day together,
as they arrive in production, so that a link's rows are spread over the tables as they
would be after 90 days of recording.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bench.harness import BenchError
from kurz.auth import queries as key_queries
from kurz.auth.models import MEMBER_SCOPES, ApiKeyCreate, Principal
from kurz.db import READ_COMMITTED, Database
from kurz.db.tables import api_keys, links

DAYS = 90
START = datetime(2026, 1, 1, tzinfo=UTC)
END = START + timedelta(days=DAYS)
HOT_CODE = "hot"
BOT_SHARE = 0.03

_BROWSERS = [
    "Chrome", "Mobile Safari", "Chrome Mobile", "Safari", "Edge", "Firefox",
    "Samsung Internet", "Chrome Mobile iOS", "Opera", "Chrome Mobile WebView", "Facebook",
    "Instagram", "Firefox Mobile", "Yandex Browser", "UC Browser", "Brave", "Vivaldi",
    "Edge Mobile", "Opera Mobile", "Firefox iOS", "DuckDuckGo Mobile", "Silk", "Whale",
    "QQ Browser", "Other",
]  # fmt: skip
_OS = [
    "Windows", "iOS", "Android", "Mac OS X", "Linux", "Chrome OS", "Ubuntu", "iPadOS",
    "Fedora", "Windows Phone", "FreeBSD", "Tizen", "KaiOS", "HarmonyOS", "Other",
]  # fmt: skip
_DEVICES = ["desktop", "mobile", "tablet", "other"]
_COUNTRIES = [
    "US", "DE", "GB", "FR", "IN", "BR", "CA", "JP", "NL", "(unknown)", "ES", "IT", "AU",
    "PL", "SE", "MX", "KR", "CH", "BE", "AT", "TR", "ID", "RU", "UA", "AR", "CO", "CL",
    "PT", "CZ", "DK", "NO", "FI", "IE", "IL", "SG", "HK", "TW", "PH", "VN", "TH", "MY",
    "ZA", "NG", "EG", "KE", "MA", "SA", "AE", "PK", "BD", "NZ", "RO", "HU", "GR", "BG",
    "RS", "HR", "SK", "SI", "LT", "LV", "EE", "IS", "LU", "PE", "VE", "EC", "UY", "CR",
    "PA", "DO", "GT", "TN", "DZ", "GH", "ET", "LK", "NP", "KZ", "GE",
]  # fmt: skip
_BOTS = [
    "Googlebot", "bingbot", "Twitterbot", "facebookexternalhit", "Slackbot", "LinkedInBot",
    "Discordbot", "TelegramBot", "WhatsApp", "Applebot", "YandexBot", "DuckDuckBot",
    "Baiduspider", "AhrefsBot", "SemrushBot", "MJ12bot", "PetalBot", "Bytespider", "GPTBot",
    "Other",
]  # fmt: skip
_NAMED_REFERRERS = [
    "(direct)", "google.com", "t.co", "facebook.com", "news.ycombinator.com", "reddit.com",
    "linkedin.com", "instagram.com", "bing.com", "duckduckgo.com", "youtube.com",
    "mail.google.com", "outlook.live.com", "slack.com", "discord.com", "github.com",
]  # fmt: skip
# ~300 referrers a day: a head that stays, and a tail drawn each day from a larger pool.
_REFERRER_HEAD = _NAMED_REFERRERS + [f"blog{i}.example.net" for i in range(134)]
_REFERRER_POOL = [f"site{i}.example.org" for i in range(3_000)]
_REFERRER_TAIL = 150

# Values a day per dimension for a quiet link: its head of each list.
_QUIET = {"referrer": 12, "browser": 8, "os": 6, "device": 4, "country": 15, "bot": 3}


def zipf(n: int, s: float = 1.1) -> list[float]:
    return [1 / k**s for k in range(1, n + 1)]


def split(total: int, weights: Sequence[float]) -> list[int]:
    """`total` shared in proportion to `weights`, in integers that sum to it exactly."""
    if total == 0:
        return [0] * len(weights)
    scale = total / sum(weights)
    shares = [w * scale for w in weights]
    counts = [int(share) for share in shares]
    # The largest remainders take the units that rounding down left over.
    left = total - sum(counts)
    for i in heapq.nlargest(left, range(len(shares)), key=lambda i: shares[i] - counts[i]):
        counts[i] += 1
    return counts


# People click by day, peaking in the (European and American) afternoon.
_DIURNAL = [1.0 + 0.8 * math.sin((hour - 9) / 24 * 2 * math.pi) for hour in range(24)]


@dataclass
class DayRows:
    """One day's rows of every link, as tuples in the tables' column order."""

    day: datetime
    hourly: list[tuple[int, datetime, int, int, int]] = field(default_factory=list)
    daily: list[tuple[int, datetime, int, int, int]] = field(default_factory=list)
    breakdowns: list[tuple[int, str, datetime, str, int]] = field(default_factory=list)

    def rows(self) -> int:
        return len(self.hourly) + len(self.daily) + len(self.breakdowns)


HOURLY_COLUMNS = ("link_id", "hour", "clicks", "bot_clicks", "uniques")
DAILY_COLUMNS = ("link_id", "day", "clicks", "bot_clicks", "uniques")
BREAKDOWN_COLUMNS = ("link_id", "dimension", "day", "value", "clicks")


class Generator:
    """Deterministic rows for a hot link (its clicks given) and quiet links (1/rank)."""

    def __init__(self, hot_id: int, hot_clicks: int, quiet_ids: Sequence[int], seed: int) -> None:
        self.rng = random.Random(seed)
        rng = self.rng
        # A growing trend, a weekly rhythm, and noise.
        shape = [
            (1 + d / DAYS) * (0.75 if d % 7 in (5, 6) else 1.0) * rng.uniform(0.85, 1.15)
            for d in range(DAYS)
        ]
        self.per_day = {hot_id: split(hot_clicks, shape)}
        for rank, link_id in enumerate(quiet_ids, 1):
            jittered = [w * rng.uniform(0.3, 1.7) for w in shape]
            self.per_day[link_id] = split(300_000 // rank, jittered)
        self.hot_id = hot_id

    def _jitter(self, weights: Sequence[float]) -> list[float]:
        uniform = self.rng.uniform
        return [w * uniform(0.7, 1.3) for w in weights]

    def _values(self, link_id: int, dimension: str) -> list[str]:
        hot = link_id == self.hot_id
        if dimension == "referrer":
            if not hot:
                return _REFERRER_HEAD[: _QUIET["referrer"]]
            return _REFERRER_HEAD + self.rng.sample(_REFERRER_POOL, _REFERRER_TAIL)
        values = {
            "browser": _BROWSERS,
            "os": _OS,
            "device": _DEVICES,
            "country": _COUNTRIES,
            "bot": _BOTS,
        }[dimension]
        return values if hot else values[: _QUIET[dimension]]

    def days(self) -> Iterator[DayRows]:
        for d in range(DAYS):
            day = START + timedelta(days=d)
            rows = DayRows(day)
            for link_id, per_day in self.per_day.items():
                self._link_day(rows, link_id, per_day[d])
            yield rows

    def _link_day(self, rows: DayRows, link_id: int, clicks: int) -> None:
        day = rows.day
        bots = round(clicks * BOT_SHARE * self.rng.uniform(0.5, 1.5))
        by_hour = split(clicks, self._jitter(_DIURNAL))
        bots_by_hour = split(bots, self._jitter([1.0] * 24))
        hour_uniques = 0
        for hour, (people, robots) in enumerate(zip(by_hour, bots_by_hour, strict=True)):
            if people or robots:
                uniques = math.ceil(people * self.rng.uniform(0.6, 0.85))
                hour_uniques += uniques
                rows.hourly.append((link_id, day + timedelta(hours=hour), people, robots, uniques))
        if not (clicks or bots):
            return
        # Some visitors come back in another hour of the day: fewer than the hours' sum.
        rows.daily.append((link_id, day, clicks, bots, math.ceil(hour_uniques * 0.8)))
        for dimension in _QUIET:
            values = self._values(link_id, dimension)
            total = bots if dimension == "bot" else clicks
            for value, n in zip(values, split(total, self._jitter(zipf(len(values)))), strict=True):
                if n:
                    rows.breakdowns.append((link_id, dimension, day, value, n))


def _sqlite_stamp(at: datetime) -> str:
    # As UTCDateTime stores it on SQLite: naive UTC, "YYYY-MM-DD HH:MM:SS.ffffff".
    return at.replace(tzinfo=None).isoformat(" ", "microseconds")


async def _insert(
    conn: AsyncConnection, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]], at: int
) -> None:
    """Many rows fast: executemany on SQLite (its timestamps as text), COPY on PostgreSQL."""
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        stamped = [(*row[:at], _sqlite_stamp(row[at]), *row[at + 1 :]) for row in rows]
        marks = ", ".join("?" * len(columns))
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608
        await conn.exec_driver_sql(sql, stamped)
        return
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None
    await driver.copy_records_to_table(table, records=rows, columns=list(columns))


async def insert_day(db: Database, rows: DayRows) -> None:
    async with db.write(READ_COMMITTED) as conn:
        await _insert(conn, "link_clicks_hourly", HOURLY_COLUMNS, rows.hourly, 1)
        await _insert(conn, "link_clicks_daily", DAILY_COLUMNS, rows.daily, 1)
        await _insert(conn, "link_breakdowns_daily", BREAKDOWN_COLUMNS, rows.breakdowns, 2)


async def owner_rollups(db: Database) -> None:
    """The per-owner rollups of the seeded rows, as the store would have kept them:
    link_clicks_daily summed by owner and day, and by link (as migration 0013 fills
    them)."""
    async with db.write(READ_COMMITTED) as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO owner_clicks_daily (user_id, day, clicks, bot_clicks, uniques) "
                "SELECT l.user_id, d.day, sum(d.clicks), sum(d.bot_clicks), sum(d.uniques) "
                "FROM link_clicks_daily d JOIN links l ON l.id = d.link_id "
                "GROUP BY l.user_id, d.day"
            )
        )
        await conn.execute(
            sa.text(
                "INSERT INTO link_clicks_total (link_id, user_id, clicks) "
                "SELECT d.link_id, l.user_id, sum(d.clicks) FROM link_clicks_daily d "
                "JOIN links l ON l.id = d.link_id GROUP BY d.link_id, l.user_id "
                "HAVING sum(d.clicks) > 0"
            )
        )


async def make_links(db: Database, quiet: int) -> tuple[Principal, int, list[int]]:
    """A user (made with its key) owning the hot link and `quiet` others; the hot link's id
    is in the middle."""
    codes = [f"q{i:05d}" for i in range(quiet)]
    codes.insert(quiet // 2, HOT_CODE)
    async with db.write(READ_COMMITTED) as conn:
        key = await key_queries.create(conn=conn, key_in=ApiKeyCreate(name="bench"), now=START)
        user_id = (
            await conn.execute(sa.select(api_keys.c.user_id).where(api_keys.c.id == key.id))
        ).scalar_one()
        common = {
            "url": "https://example.com/",
            "is_alias": True,
            "user_id": user_id,
            "created_by_user_id": user_id,
            "created_by_key_id": key.id,
            "created_at": START,
            "updated_at": START,
            "redirect_status": 302,
            "forward_query": False,
        }
        await conn.execute(sa.insert(links), [{"code": code, **common} for code in codes])
        ids = dict((await conn.execute(sa.select(links.c.code, links.c.id))).tuples().all())
    principal = Principal(
        user_id=user_id, role="member", scopes=MEMBER_SCOPES, name=key.name, key_id=key.id
    )
    return principal, ids.pop(HOT_CODE), [ids[code] for code in codes if code != HOT_CODE]


async def check(db: Database, hot_id: int, hot_clicks: int) -> None:
    """The hot link's rows agree with each other, as the store's would."""
    sums = {
        "hourly clicks": "SELECT sum(clicks) FROM link_clicks_hourly WHERE link_id = :id",
        "daily clicks": "SELECT sum(clicks) FROM link_clicks_daily WHERE link_id = :id",
        "hourly bot clicks": "SELECT sum(bot_clicks) FROM link_clicks_hourly WHERE link_id = :id",
    }
    async with db.read() as conn:
        found = {
            name: int((await conn.execute(sa.text(sql), {"id": hot_id})).scalar_one())
            for name, sql in sums.items()
        }
        per_dimension = await conn.execute(
            sa.text(
                "SELECT dimension, sum(clicks) FROM link_breakdowns_daily "
                "WHERE link_id = :id GROUP BY dimension"
            ),
            {"id": hot_id},
        )
        dimensions = {name: int(n) for name, n in per_dimension}
    bots = found["hourly bot clicks"]
    expected = dict.fromkeys(_QUIET, hot_clicks) | {"bot": bots}
    if found["hourly clicks"] != hot_clicks or found["daily clicks"] != hot_clicks:
        raise BenchError(f"the seeded totals do not add up: {found}")
    if dimensions != expected:
        raise BenchError(f"the seeded breakdowns do not add up: {dimensions} != {expected}")
