"""A Kutt user's links, read over its API v2 (docs/imports/kutt.md, "From its API v2").

Kutt lists a user's links newest first, by offset (`skip`), at most 50 a request; a
page here is ten of those requests, and its position the offset after it. Each link's
visit count comes with it (visits by people: Kutt counts no bots), carried over as a
total: Kutt's per-link statistics give days for the last 30 only.
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

NAME = "Kutt"
# Kutt answers at most 50 links a request, however many are asked for.
LIMIT = 50
PAGE_SIZE = 500


class KuttSettings(BaseModel):
    api_url: str = Field(
        description="Kutt's address (https://kutt.example.com); its API is under /api/v2."
    )
    api_key: SecretStr = Field(description="An API key of the user (Kutt: Settings, API).")

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        url = checked_url(value)
        return url if url.endswith("/api/v2") else url + "/api/v2"


class KuttApi:
    """The links of the Kutt user whose API key it is."""

    def __init__(
        self, settings: KuttSettings, *, allow_private: bool, sleep: Sleep = asyncio.sleep
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
        answer = await self._api.get("/links", {"limit": 1, "skip": 0})
        total = answer.get("total") if isinstance(answer, Mapping) else None
        return total if isinstance(total, int) and not isinstance(total, bool) else None

    async def pages(self, after: str | None) -> AsyncIterator[Page]:
        skip = _skip(after)
        done = False
        while not done:
            items: list[Item] = []
            start = skip
            while skip - start < PAGE_SIZE:
                answer = await self._api.get("/links", {"limit": LIMIT, "skip": skip})
                links = answers.listing(answer, "data", name=NAME)
                for n, raw in enumerate(links, skip + 1):
                    items.extend(_link(raw, fallback=f"link {n}"))
                skip += len(links)
                total = answer.get("total")
                if not links or (isinstance(total, int) and skip >= total):
                    done = True
                    break
            if skip > start:
                yield Page(items, str(skip))

    async def aclose(self) -> None:
        await self._api.aclose()


def _link(raw: object, *, fallback: str) -> list[Item]:
    uuid, place = None, fallback
    try:
        found = answers.item(raw)
        uuid = answers.required(found, "id")
        place = answers.text(found, "link") or answers.text(found, "address") or uuid
        record = _record(found, uuid, place)
        visits = answers.whole(found, "visit_count") or 0
        banned = answers.flag(found, "banned")
        protected = answers.flag(found, "password")
    except Malformed as exc:
        return [Unreadable(place=place, reason=str(exc), source_id=uuid)]
    if banned:
        return [Unreadable(place=place, reason="banned in Kutt", source_id=uuid)]
    if protected:
        # Kutt's API says only that there is one; imported without it, the link would
        # open to anyone.
        reason = "protected by a password, which Kutt's API does not give"
        return [Unreadable(place=place, reason=reason, source_id=uuid)]
    if not visits:
        return [record]
    return [record, Clicks(source_id=uuid, total=visits)]


def _record(found: Mapping[str, Any], uuid: str, place: str) -> Record:
    url = answers.required(found, "target")
    return Record(
        place=place,
        source_id=uuid,
        url=url,
        alias=answers.required(found, "address"),
        # null: Kutt's own domain.
        domain=answers.text(found, "domain"),
        title=answers.text(found, "description"),
        created_at=answers.when(found, "created_at"),
        expires_at=answers.when(found, "expire_in"),
    )


def _skip(after: str | None) -> int:
    if after is None:
        return 0
    if not after.isdigit():
        raise SourceError(f"{after!r} is not a position in Kutt's list of links")
    return int(after)


def _open(opening: Opening) -> KuttApi:
    return KuttApi(cast(KuttSettings, opening.settings), allow_private=opening.allow_private)


KIND = SourceKind(
    name="kutt-api",
    title="Kutt (API v2)",
    source="kutt",
    takes_file=False,
    open=_open,
    settings=KuttSettings,
    doc="docs/imports/kutt.md",
    notes=(
        "Reads the links of the user whose API key it is, with their visit counts (totals, "
        "no days). Links protected by a password or banned are reported, not imported.",
    ),
)
