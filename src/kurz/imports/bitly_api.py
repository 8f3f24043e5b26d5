"""Bitly's links and their daily clicks, read over its API v4 (docs/imports/bitly.md).

A page is one of Bitly's pages of a group's bitlinks (100, its most), archived ones
included, each link followed by its clicks per day: one more request per link, which
Bitly's rate limits count (a 429 is waited out by kurz.imports.http). A page's position
is Bitly's cursor for the next one (`search_after`, or `page` from an API that still
pages), so that an import goes on from the page after the last one it wrote.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import date
from typing import Any, cast
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator

from kurz.imports import answers
from kurz.imports.answers import Malformed
from kurz.imports.http import ApiClient, ApiError, Sleep, checked_url
from kurz.imports.sources import (
    Clicks,
    DayClicks,
    Item,
    Opening,
    Page,
    Record,
    SourceError,
    SourceKind,
    Unreadable,
)

NAME = "Bitly"
# Bitly's own domains: a link on one of them goes to the import's domain.
BITLY_DOMAINS = frozenset({"bit.ly", "j.mp", "bitly.is"})
PAGE_SIZE = 100
# The position of the last page: nothing follows it.
END = "end"
CURSORS = ("search_after", "page")


class BitlySettings(BaseModel):
    token: SecretStr = Field(description="A Bitly access token (Bitly: Settings, API).")
    api_url: str = Field(
        default="https://api-ssl.bitly.com/v4", description="Bitly's API, with its version."
    )
    group_guid: str | None = Field(
        default=None,
        description="The group whose links are read; default: the token's default group.",
    )
    clicks: bool = Field(
        default=True,
        description="Read each link's clicks per day (a request per link); false: links only.",
    )

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        return checked_url(value)


class BitlyApi:
    """A Bitly group's bitlinks, page by page."""

    def __init__(
        self, settings: BitlySettings, *, allow_private: bool, sleep: Sleep = asyncio.sleep
    ) -> None:
        self._api = ApiClient(
            name=NAME,
            base_url=settings.api_url,
            headers={"authorization": f"Bearer {settings.token.get_secret_value()}"},
            allow_private=allow_private,
            credential="token",
            sleep=sleep,
        )
        self._group = settings.group_guid
        self._with_clicks = settings.clicks

    async def total(self) -> int | None:
        # `total` is on its way out of Bitly's pagination; while it is there, one
        # request of one link tells it.
        path = self._links_path(await self._group_guid())
        answer = await self._api.get(path, {"size": 1, "archived": "both"})
        pagination = answer.get("pagination") if isinstance(answer, Mapping) else None
        total = pagination.get("total") if isinstance(pagination, Mapping) else None
        return total if isinstance(total, int) and not isinstance(total, bool) else None

    async def pages(self, after: str | None) -> AsyncIterator[Page]:
        if after == END:
            return
        cursor = _cursor(after)
        path = self._links_path(await self._group_guid())
        while True:
            answer = await self._api.get(path, {"size": PAGE_SIZE, "archived": "both", **cursor})
            links = answers.listing(answer, "links", name=NAME)
            at = urlencode(cursor) or "the start"
            items: list[Item] = []
            for n, raw in enumerate(links, 1):
                items.extend(await self._link(raw, fallback=f"link {n} of the page at {at}"))
            following = _next(answer) if links else None
            if following is not None and following == cursor:
                raise SourceError(f"{NAME} gave the same page again ({urlencode(cursor)})")
            yield Page(items, END if following is None else urlencode(following))
            if following is None:
                return
            cursor = following

    async def aclose(self) -> None:
        await self._api.aclose()

    async def _group_guid(self) -> str:
        if self._group is None:
            user = await self._api.get("/user")
            guid = user.get("default_group_guid") if isinstance(user, Mapping) else None
            if not isinstance(guid, str) or not guid:
                raise SourceError(f"{NAME} names no default group for this token; give group_guid")
            self._group = guid
        return self._group

    def _links_path(self, group: str) -> str:
        return f"/groups/{quote(group, safe='')}/bitlinks"

    async def _link(self, raw: object, *, fallback: str) -> list[Item]:
        """The link's Record and its Clicks; or, if either cannot be read, Unreadable."""
        bitlink = None
        try:
            found = answers.item(raw)
            bitlink = answers.required(found, "id")
            record = _record(found, bitlink)
            daily = await self._clicks(bitlink)
        except Malformed as exc:
            return [Unreadable(place=bitlink or fallback, reason=str(exc), source_id=bitlink)]
        if not daily:
            return [record]
        return [record, Clicks(source_id=bitlink, daily=daily)]

    async def _clicks(self, bitlink: str) -> list[DayClicks]:
        if not self._with_clicks:
            return []
        try:
            answer = await self._api.get(
                f"/bitlinks/{quote(bitlink, safe='/')}/clicks", {"unit": "day", "units": -1}
            )
        except ApiError as exc:
            if exc.status == 404:
                return []
            if exc.status in (402, 403):
                raise SourceError(
                    f'{exc}, asked for the clicks of {bitlink}; import with "clicks": '
                    "false to bring the links without their clicks"
                ) from None
            raise
        try:
            days = answers.listing(answer, "link_clicks", name=NAME)
        except SourceError:
            raise Malformed("its clicks: the answer has no link_clicks") from None
        counts: Counter[date] = Counter()
        for raw in days:
            try:
                entry = answers.item(raw)
                day = answers.day(entry, "date")
                clicks = answers.whole(entry, "clicks")
            except Malformed as exc:
                raise Malformed(f"its clicks: {exc}") from None
            if day is None or clicks is None:
                raise Malformed("its clicks: a day without its date or clicks")
            counts[day] += clicks
        return [DayClicks(day=day, clicks=n) for day, n in sorted(counts.items()) if n]


def _record(found: Mapping[str, Any], bitlink: str) -> Record:
    domain, _, back_half = bitlink.partition("/")
    if not domain or not back_half:
        raise Malformed(f"id is not a domain and a back-half: {bitlink!r}")
    url = answers.required(found, "long_url")
    answers.flag(found, "archived")  # Archived links are read all the same.
    host = domain.lower()
    return Record(
        place=bitlink,
        source_id=bitlink,
        url=url,
        alias=_custom(answers.texts(found, "custom_bitlinks"), host) or back_half,
        domain=None if host in BITLY_DOMAINS else host,
        title=answers.text(found, "title"),
        tags=tuple(answers.texts(found, "tags")),
        created_at=answers.when(found, "created_at"),
    )


def _custom(custom_bitlinks: Sequence[str], host: str) -> str | None:
    """The first custom back-half the link has on its own domain (what people were
    given), if any."""
    for custom in custom_bitlinks:
        domain, _, keyword = custom.split("://", 1)[-1].partition("/")
        if domain.lower() == host and keyword.strip("/"):
            return keyword.strip("/")
    return None


def _cursor(after: str | None) -> dict[str, str]:
    if after is None:
        return {}
    cursor = dict(parse_qsl(after))
    if not cursor or not set(cursor) <= set(CURSORS):
        raise SourceError(f"{after!r} is not a position in Bitly's list of links")
    return cursor


def _next(answer: object) -> dict[str, str] | None:
    """The cursor of the page after this one; None after the last. Bitly's iteration
    token first (an empty one marks the last page); else the query of `next`."""
    pagination = answer.get("pagination") if isinstance(answer, Mapping) else None
    if not isinstance(pagination, Mapping):
        return None
    token = pagination.get("search_after")
    if isinstance(token, str) and token:
        return {"search_after": token}
    following = pagination.get("next")
    if not isinstance(following, str) or not following:
        return None
    query = dict(parse_qsl(urlsplit(following).query))
    cursor = {key: query[key] for key in CURSORS if query.get(key)}
    if not cursor:
        raise SourceError(f"{NAME}'s next page has no cursor kurz can follow: {following}")
    return cursor


def _open(opening: Opening) -> BitlyApi:
    return BitlyApi(cast(BitlySettings, opening.settings), allow_private=opening.allow_private)


KIND = SourceKind(
    name="bitly",
    title="Bitly (API)",
    source="bitly",
    takes_file=False,
    open=_open,
    settings=BitlySettings,
    doc="docs/imports/bitly.md",
    notes=(
        "Reads a group's bitlinks (archived ones too) and each one's clicks per day: one "
        "request per link, which counts against Bitly's hourly limits.",
    ),
)
