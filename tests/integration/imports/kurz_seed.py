"""A kurz with links of every shape and their statistics, exported with the real
exporter; and what its database holds, by each link's source id ("host/code"), to
hold a reading or an import of the export to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI

from kurz.db import Database
from kurz.db.tables import (
    domains,
    link_breakdowns_daily,
    link_clicks_daily,
    link_clicks_hourly,
    link_clicks_total,
    links,
    owner_clicks_daily,
    users,
)
from kurz.exports.service import CHUNK_ROWS, PAGE_SIZE, Exports
from kurz.imports.sources import Clicks, DayBreakdown, DayClicks, HourClicks, Record
from tests.conftest import BASE_URL
from tests.integration.analytics.rollups import Rollups
from tests.integration.auth import support as people
from tests.integration.auth.people import client
from tests.integration.links.support import create
from tests.support import FakeClock

HOST = "kurz.test"  # BASE_URL's
OTHER = "go.example"


@dataclass(frozen=True)
class Seeded:
    # Each link as GET /api/v1/links/{code} showed it (a tombstone: before it was
    # deleted), by source id.
    shown: dict[str, dict[str, Any]]
    admin_secret: str


async def seed(app: FastAPI, db: Database, clock: FakeClock) -> Seeded:
    """Alice's links of every shape (a tombstone among them) and Bob's, on the default
    domain and on go.example, with statistics: days with bots and uniques, hours, and
    breakdowns of every dimension."""
    admin = await people.admin(db, clock, "root@example.com")
    alice = await people.member(db, clock, "alice@example.com")
    bob = await people.member(db, clock, "bob@example.com")
    shown: dict[str, dict[str, Any]] = {}
    async with client(app, admin.secret) as root, client(app, alice.secret) as api:
        made = await root.post("/api/v1/domains", json={"host": OTHER})
        assert made.status_code == 201, made.text
        spring = await create(
                api,
                url="https://example.com/full",
                domain=OTHER,
                alias="spring",
                tags=["launch", "b, with a comma"],
                valid_from=clock.iso(60),
                expires_at=clock.iso(86_400),
                max_visits=5,
                fallbacks={"expired": "https://example.com/over", "used_up": "https://x.org/"},
                redirect_status=301,
                forward_query=True,
                rules=[
                    {
                        "url": "https://example.com/de",
                        "match": "any",
                        "conditions": [
                            {"type": "country", "in": ["DE", "AT"]},
                            {"type": "language", "in": ["de"]},
                        ],
                    },
                    {
                        "url": "https://example.com/m",
                        "conditions": [{"type": "device", "in": ["ios"]}],
                    },
                ],
                variants=[
                    {"url": "https://example.com/a", "weight": 70},
                    {"url": "https://example.com/b", "weight": 30},
                ],
                variant_choice="sticky",
                password="open sesame",
                og_title="Spring",
                og_description="The spring sale",
                og_image="https://example.com/spring.png",
            )  # fmt: skip
        made_links = [
            spring,
            await create(api, url="https://example.com/plain"),
            await create(api, url="https://example.com/capped", alias="capped", max_visits=3),
            await create(api, alias="secret", password="hunter2", tags=["private"]),
            await create(
                api,
                alias="random",
                variants=[
                    {"url": "https://example.com/1", "weight": 1},
                    {"url": "https://example.com/2", "weight": 2},
                ],
                variant_choice="random",
            ),
            await create(api, alias="gone", og_title="Deleted, with clicks", tags=["old"]),
            await create(api, alias="gone-too", domain=OTHER),
        ]
        async with client(app) as anon:
            assert (await anon.get("/capped")).status_code == 302
        for link in made_links:
            shown[f"{link['domain']}/{link['code']}"] = (
                await api.get(f"/api/v1/links/{link['code']}", params={"domain": link["domain"]})
            ).json()
        assert (await api.delete("/api/v1/links/gone")).status_code == 204
        gone = await api.delete("/api/v1/links/gone-too", params={"domain": OTHER})
        assert gone.status_code == 204
    async with client(app, bob.secret) as bobs:
        link = await create(bobs, alias="bobs", tags=["b"], url="https://bob.example/")
        changed = await bobs.patch(
            "/api/v1/links/bobs", json={"og_title": "Bob's"}, headers={"If-Match": "*"}
        )
        assert changed.status_code == 200, changed.text
        shown[f"{HOST}/bobs"] = changed.json()

    ids = {source_id: link_id for link_id, source_id in (await source_ids(db)).items()}
    rollups = Rollups()
    dimensions = ("referrer", "browser", "os", "device", "country", "city", "bot", "variant")
    for n, source_id in enumerate(["go.example/spring", f"{HOST}/gone", f"{HOST}/bobs",
                                   f"{HOST}/random"]):  # fmt: skip
        link_id = ids[source_id]
        for day in range(1, 4 + n):
            rollups.day(link_id, f"2025-12-{day:02d}", 10 * day + n, 3 + day, bots=day % 3)
            for hour in (0, 9, 23):
                rollups.hour(link_id, f"2025-12-{day:02d} {hour:02d}:00", hour + 1, 1, hour % 2)
            for m, dimension in enumerate(dimensions):
                rollups.value(link_id, f"2025-12-{day:02d}", dimension, f"{dimension}-{m}", m + 1)
        rollups.value(link_id, "2025-12-01", "referrer", "(direct)", 7)
    await rollups.write(db)
    return Seeded(shown=shown, admin_secret=admin.secret)


async def export_to(
    db: Database,
    clock: FakeClock,
    path: Path,
    *,
    page_size: int = PAGE_SIZE,
    chunk_rows: int = CHUNK_ROWS,
) -> Path:
    """Every link, tombstones included, with statistics: the whole kurz, as `kurz
    export` and an admin's GET /api/v1/export write it."""
    exports = Exports(
        db=db, clock=clock, base_url=BASE_URL, page_size=page_size, chunk_rows=chunk_rows
    )
    export = exports.open(export_format="jsonl", user_id=None, statistics=True)
    with path.open("wb") as file:
        async for piece in export:
            file.write(piece)
    return path


def _host() -> Any:
    return sa.func.coalesce(domains.c.host, HOST)


def _source_id() -> Any:
    return _host() + "/" + links.c.code


async def source_ids(db: Database) -> dict[int, str]:
    """Every link's source id ("host/code"), by its id."""
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(links.c.id, _source_id()).select_from(
                links.outerjoin(domains, domains.c.id == links.c.domain_id)
            )
        )
        return {int(link_id): source_id for link_id, source_id in rows}


async def stored_links(db: Database) -> dict[str, dict[str, Any]]:
    """What the API does not show of each link, by source id: its owner's email,
    visits, password hash, deletion."""
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(
                _source_id().label("source_id"),
                users.c.email.label("owner"),
                links.c.visits,
                links.c.password_hash,
                links.c.deleted_at,
            ).select_from(
                links.outerjoin(domains, domains.c.id == links.c.domain_id).join(
                    users, users.c.id == links.c.user_id
                )
            )
        )
        return {row.source_id: dict(row._mapping) for row in rows}


def expected_record(shown: dict[str, Any], stored: dict[str, Any], place: str) -> Record:
    """The Record a link shown by the API and stored so should be read as."""
    return Record(
        place=place,
        source_id=f"{shown['domain']}/{shown['code']}",
        url=shown["url"],
        alias=shown["code"],
        drawn=not shown["alias"],
        domain=None if shown["domain"] == HOST else shown["domain"],
        title=shown["og_title"],
        tags=tuple(shown["tags"]),
        created_at=_when(shown["created_at"]),
        starts_at=_when(shown["valid_from"]),
        expires_at=_when(shown["expires_at"]),
        max_visits=shown["max_visits"],
        visits=stored["visits"],
        redirect_status=shown["redirect_status"],
        forward_query=shown["forward_query"],
        rules=shown["rules"],
        variants=shown["variants"],
        variant_choice=shown["variant_choice"],
        fallbacks=shown["fallbacks"],
        password_hash=stored["password_hash"],
        og_description=shown["og_description"],
        og_image=shown["og_image"],
        deleted_at=stored["deleted_at"],
    )


def _when(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


@dataclass
class Statistics:
    """A link's rollup rows, in each table's key order."""

    daily: list[DayClicks]
    hourly: list[HourClicks]
    breakdowns: list[DayBreakdown]


def merged(items: list[Clicks]) -> dict[str, Statistics]:
    """Clicks items added up by link."""
    found: dict[str, Statistics] = {}
    for item in items:
        stats = found.setdefault(item.source_id, Statistics([], [], []))
        stats.daily += item.daily
        stats.hourly += item.hourly
        stats.breakdowns += item.breakdowns
    return found


async def stored_statistics(db: Database) -> dict[str, Statistics]:
    """Every link's rollup rows, by source id; links with none left out."""
    names = await source_ids(db)
    found: dict[str, Statistics] = {}

    def of(link_id: int) -> Statistics:
        return found.setdefault(names[link_id], Statistics([], [], []))

    async with db.read() as conn:
        daily = link_clicks_daily.c
        for row in await conn.execute(
            sa.select(link_clicks_daily).order_by(daily.link_id, daily.day)
        ):
            of(row.link_id).daily.append(
                DayClicks(_day(row.day), row.clicks, row.bot_clicks, row.uniques)
            )
        hourly = link_clicks_hourly.c
        for row in await conn.execute(
            sa.select(link_clicks_hourly).order_by(hourly.link_id, hourly.hour)
        ):
            of(row.link_id).hourly.append(
                HourClicks(row.hour, row.clicks, row.bot_clicks, row.uniques)
            )
        values = link_breakdowns_daily.c
        query = sa.select(link_breakdowns_daily).order_by(
            values.link_id, values.dimension, values.day, values.value
        )
        for row in await conn.execute(query):
            of(row.link_id).breakdowns.append(
                DayBreakdown(row.dimension, _day(row.day), row.value, row.clicks)
            )
    return found


def _day(value: datetime) -> date:
    return value.astimezone(UTC).date()


async def totals(db: Database) -> dict[str, int]:
    """link_clicks_total, by source id."""
    names = await source_ids(db)
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(link_clicks_total.c.link_id, link_clicks_total.c.clicks)
        )
        return {names[link_id]: clicks for link_id, clicks in rows}


async def owner_days(db: Database) -> dict[tuple[str, date], tuple[int, int, int]]:
    """owner_clicks_daily: (clicks, bot clicks, uniques) by owner's email and day."""
    c = owner_clicks_daily.c
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(users.c.email, c.day, c.clicks, c.bot_clicks, c.uniques).join(
                users, users.c.id == c.user_id
            )
        )
        return {
            (email, _day(day)): (clicks, bots, uniques)
            for email, day, clicks, bots, uniques in rows
        }
