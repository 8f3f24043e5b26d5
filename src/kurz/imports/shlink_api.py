"""Shlink's short URLs, read over its REST API v3 (docs/imports/shlink.md).

A page is one of Shlink's pages of 500 short URLs, oldest first (so that URLs made
while the import runs land at the end, not in pages already read), and its position
that page's number. Each URL's visit count comes with it and is carried over as a
total (its visits by people: Shlink tells bots apart). The days are not read: Shlink
gives them only as its list of every visit of a URL, a request or more per URL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any, cast

from pydantic import BaseModel, Field, SecretStr, field_validator

from kurz.imports import answers
from kurz.imports.answers import Malformed
from kurz.imports.http import ApiClient, Sleep, checked_url
from kurz.imports.sources import (
    Clicks,
    Item,
    Opening,
    Page,
    Record,
    SourceError,
    SourceKind,
    Unreadable,
)

NAME = "Shlink"
PAGE_SIZE = 500
# What Shlink's list, its CSV export and kurz's ids say for a URL on the default domain.
DEFAULT_DOMAIN = "DEFAULT"


class ShlinkSettings(BaseModel):
    api_url: str = Field(
        description="Shlink's address (https://s.example.com); its API is under /rest/v3."
    )
    api_key: SecretStr = Field(description="A Shlink API key (shlink api-key:generate).")

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        url = checked_url(value)
        return url if url.endswith("/rest/v3") else url + "/rest/v3"


class ShlinkApi:
    """The short URLs a Shlink API key may list (all of them for an admin key)."""

    def __init__(
        self, settings: ShlinkSettings, *, allow_private: bool, sleep: Sleep = asyncio.sleep
    ) -> None:
        self._api = ApiClient(
            name=NAME,
            base_url=settings.api_url,
            headers={"x-api-key": settings.api_key.get_secret_value()},
            allow_private=allow_private,
            credential="API key",
            sleep=sleep,
        )

    async def total(self) -> int | None:
        answer = await self._api.get("/short-urls", {"page": 1, "itemsPerPage": 1})
        pagination = _pagination(answer)
        total = pagination.get("totalItems")
        return total if isinstance(total, int) and not isinstance(total, bool) else None

    async def pages(self, after: str | None) -> AsyncIterator[Page]:
        page = _page(after) + 1
        while True:
            answer = await self._api.get(
                "/short-urls",
                {"page": page, "itemsPerPage": PAGE_SIZE, "orderBy": "dateCreated-ASC"},
            )
            urls = answers.listing(answer, "shortUrls", "data", name=NAME)
            if not urls:
                return
            first = (page - 1) * PAGE_SIZE + 1
            items: list[Item] = []
            for n, raw in enumerate(urls, first):
                items.extend(_short_url(raw, fallback=f"short URL {n}"))
            yield Page(items, str(page))
            pages = _pagination(answer).get("pagesCount")
            if not isinstance(pages, int) or page >= pages:
                return
            page += 1

    async def aclose(self) -> None:
        await self._api.aclose()


def _short_url(raw: object, *, fallback: str) -> list[Item]:
    source_id, place = None, fallback
    try:
        found = answers.item(raw)
        code = answers.required(found, "shortCode")
        domain = answers.text(found, "domain")
        source_id = f"{domain or DEFAULT_DOMAIN}/{code}"
        place = answers.text(found, "shortUrl") or source_id
        total, people = _visits(found)
        record = _record(found, source_id, place, total)
    except Malformed as exc:
        return [Unreadable(place=place, reason=str(exc), source_id=source_id)]
    if not people:
        return [record]
    return [record, Clicks(source_id=source_id, total=people)]


def _record(found: Mapping[str, Any], source_id: str, place: str, visits: int) -> Record:
    url = answers.required(found, "longUrl")
    meta = answers.item(found.get("meta") or {}, "meta")
    max_visits = answers.whole(meta, "maxVisits")
    return Record(
        place=place,
        source_id=source_id,
        url=url,
        alias=answers.text(found, "shortCode"),
        domain=answers.text(found, "domain"),
        title=answers.text(found, "title"),
        tags=tuple(answers.texts(found, "tags")),
        created_at=answers.when(found, "dateCreated"),
        starts_at=answers.when(meta, "validSince"),
        expires_at=answers.when(meta, "validUntil"),
        max_visits=max_visits,
        # Shlink counts every visit, bots' too, against maxVisits.
        visits=visits if max_visits is not None else 0,
        forward_query=answers.flag(found, "forwardQuery"),
    )


def _visits(found: Mapping[str, Any]) -> tuple[int, int]:
    """All its visits, and those by people: visitsSummary (Shlink 3.4 and later), or the
    visitsCount of older versions, which does not tell bots apart."""
    summary = found.get("visitsSummary")
    if summary is not None:
        summary = answers.item(summary, "visitsSummary")
        total = answers.whole(summary, "total") or 0
        people = answers.whole(summary, "nonBots")
        return total, total if people is None else people
    count = answers.whole(found, "visitsCount") or 0
    return count, count


def _pagination(answer: object) -> Mapping[str, Any]:
    listed = answer.get("shortUrls") if isinstance(answer, Mapping) else None
    pagination = listed.get("pagination") if isinstance(listed, Mapping) else None
    return pagination if isinstance(pagination, Mapping) else {}


def _page(after: str | None) -> int:
    if after is None:
        return 0
    if not after.isdigit():
        raise SourceError(f"{after!r} is not a position in Shlink's list of short URLs")
    return int(after)


def _open(opening: Opening) -> ShlinkApi:
    return ShlinkApi(cast(ShlinkSettings, opening.settings), allow_private=opening.allow_private)


KIND = SourceKind(
    name="shlink",
    title="Shlink (REST API)",
    source="shlink",
    takes_file=False,
    open=_open,
    settings=ShlinkSettings,
    doc="docs/imports/shlink.md",
    notes=(
        "Reads every short URL the API key may list, with its visit count (a total, no "
        "days). Redirect rules and the crawlable flag are not carried over.",
    ),
)
