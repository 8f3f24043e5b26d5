"""The Shlink API source against a local server answering as Shlink's REST API v3
documents (docs/swagger/paths/v1_short-urls.json, definitions/ShortUrl.json):
GET /rest/v3/short-urls?page=&itemsPerPage=&orderBy= with X-Api-Key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from kurz.imports import shlink_api
from kurz.imports.kinds import KINDS
from kurz.imports.shlink_api import ShlinkApi, ShlinkSettings
from kurz.imports.sources import Clicks, Opening, Page, Record, SourceError, Unreadable
from tests.integration.imports.apifakes import SHLINK_KEY as API_KEY
from tests.integration.imports.apifakes import FakeShlink, short_url
from tests.integration.imports.apiserver import Answer, ApiServer, serving

# Oldest first, as the source asks for them.
URLS = [
    short_url(
        "12C18",
        "https://store.steampowered.com",
        visitsSummary={"total": 328, "nonBots": 300, "bots": 28},
        tags=["games", "tech"],
        meta={"validSince": "2017-01-21T00:00:00+02:00", "validUntil": None, "maxVisits": 400},
        title="Welcome to Steam",
    ),
    short_url("12Kb3", "https://shlink.io", domain="example.com", forwardQuery=False),
    short_url(
        "123bA",
        "https://www.google.com",
        meta={"validSince": None, "validUntil": "2030-01-01T00:00:00+00:00", "maxVisits": None},
        visitsSummary={"total": 25, "nonBots": 0, "bots": 25},
        crawlable=True,
        hasRedirectRules=True,
    ),
    # Before Shlink 3.4: a count, bots and all.
    {
        key: value
        for key, value in short_url("old1", "https://old.example", visitsCount=9).items()
        if key != "visitsSummary"
    },
    short_url("abc", "https://example.net", visitsSummary={"total": 3, "nonBots": 3, "bots": 0}),
]


def source(server: ApiServer, *, api_key: str = API_KEY) -> ShlinkApi:
    return ShlinkApi(
        ShlinkSettings(api_url=server.url, api_key=SecretStr(api_key)), allow_private=True
    )


async def read(found: ShlinkApi, after: str | None = None) -> list[Page]:
    try:
        return [page async for page in found.pages(after)]
    finally:
        await found.aclose()


@pytest.fixture
async def shlink(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ApiServer]:
    monkeypatch.setattr(shlink_api, "PAGE_SIZE", 2)
    async with serving(FakeShlink(URLS)) as server:
        yield server


CREATED = datetime(2023, 8, 21, 18, 34, 16, tzinfo=UTC)
EXPECTED = [
    Page(
        [
            Record(
                place="https://s.test/12C18",
                source_id="DEFAULT/12C18",
                url="https://store.steampowered.com",
                alias="12C18",
                title="Welcome to Steam",
                tags=("games", "tech"),
                created_at=CREATED,
                starts_at=datetime(2017, 1, 20, 22, tzinfo=UTC),
                max_visits=400,
                visits=328,
                forward_query=True,
            ),
            Clicks(source_id="DEFAULT/12C18", total=300),
            Record(
                place="https://example.com/12Kb3",
                source_id="example.com/12Kb3",
                url="https://shlink.io",
                alias="12Kb3",
                domain="example.com",
                created_at=CREATED,
                forward_query=False,
            ),
        ],
        "1",
    ),
    Page(
        [
            Record(
                place="https://s.test/123bA",
                source_id="DEFAULT/123bA",
                url="https://www.google.com",
                alias="123bA",
                created_at=CREATED,
                expires_at=datetime(2030, 1, 1, tzinfo=UTC),
                forward_query=True,
            ),
            Record(
                place="https://s.test/old1",
                source_id="DEFAULT/old1",
                url="https://old.example",
                alias="old1",
                created_at=CREATED,
                forward_query=True,
            ),
            Clicks(source_id="DEFAULT/old1", total=9),
        ],
        "2",
    ),
    Page(
        [
            Record(
                place="https://s.test/abc",
                source_id="DEFAULT/abc",
                url="https://example.net",
                alias="abc",
                created_at=CREATED,
                forward_query=True,
            ),
            Clicks(source_id="DEFAULT/abc", total=3),
        ],
        "3",
    ),
]


async def test_every_short_url_page_by_page_oldest_first(shlink: ApiServer) -> None:
    assert await read(source(shlink)) == EXPECTED
    assert [asked.query for asked in shlink.asked] == [
        {"page": str(page), "itemsPerPage": "2", "orderBy": "dateCreated-ASC"} for page in (1, 2, 3)
    ]


async def test_resuming_after_a_page_reads_exactly_the_pages_after_it(shlink: ApiServer) -> None:
    first = await read(source(shlink))
    assert await read(source(shlink), first[0].position) == first[1:]
    assert await read(source(shlink), first[1].position) == first[2:]
    assert await read(source(shlink), first[2].position) == []


async def test_a_429_is_asked_again_after_retry_after(shlink: ApiServer) -> None:
    shlink.once = [Answer(429, b"", {"retry-after": "0"})]
    assert await read(source(shlink)) == EXPECTED
    assert shlink.asked[0].query == shlink.asked[1].query


async def test_a_key_shlink_refuses_fails_the_import_saying_so(shlink: ApiServer) -> None:
    with pytest.raises(SourceError) as caught:
        await read(source(shlink, api_key="wrong"))
    assert str(caught.value) == (
        "Shlink answered HTTP 401: the API key was refused "
        "(Provided API key does not exist or is invalid.)"
    )


async def test_a_malformed_short_url_is_unreadable_and_the_rest_goes_on() -> None:
    urls = [
        short_url("nolong", None),
        short_url("badmeta", "https://example.com/1", meta={"maxVisits": "ten"}),
        {"longUrl": "https://example.com/no-code"},
        short_url("badvisits", "https://example.com/2", visitsSummary=[1, 2]),
        short_url("ok", "https://example.com/3", dateCreated="2024-02-29T12:00:00+00:00"),
    ]
    async with serving(FakeShlink(urls)) as server:
        pages = await read(source(server))
    assert pages == [
        Page(
            [
                Unreadable("https://s.test/nolong", "longUrl is missing", "DEFAULT/nolong"),
                Unreadable(
                    "https://s.test/badmeta",
                    "maxVisits is the string 'ten', not a whole number",
                    "DEFAULT/badmeta",
                ),
                Unreadable("short URL 3", "shortCode is missing"),
                Unreadable(
                    "https://s.test/badvisits",
                    "visitsSummary is a list, not an object",
                    "DEFAULT/badvisits",
                ),
                Record(
                    place="https://s.test/ok",
                    source_id="DEFAULT/ok",
                    url="https://example.com/3",
                    alias="ok",
                    created_at=datetime(2024, 2, 29, 12, tzinfo=UTC),
                    forward_query=True,
                ),
            ],
            "1",
        )
    ]


async def test_total_is_shlinks_total_items(shlink: ApiServer) -> None:
    found = source(shlink)
    try:
        assert await found.total() == 5
    finally:
        await found.aclose()
    assert shlink.asked[0].query == {"page": "1", "itemsPerPage": "1"}


async def test_an_empty_shlink_has_no_pages() -> None:
    async with serving(FakeShlink([])) as server:
        assert await read(source(server)) == []


async def test_a_position_that_is_not_shlinks_fails(shlink: ApiServer) -> None:
    with pytest.raises(SourceError, match="is not a position in Shlink's list of short URLs"):
        await read(source(shlink), "-1")


async def test_a_private_address_is_refused_unless_allowed(shlink: ApiServer) -> None:
    kind = KINDS["shlink"]
    settings = ShlinkSettings(api_url=shlink.url, api_key=SecretStr(API_KEY))
    refusing = kind.open(Opening(settings=settings, allow_private=False))
    with pytest.raises(SourceError) as caught:
        [page async for page in refusing.pages(None)]
    await refusing.aclose()
    assert str(caught.value) == (
        "Shlink: kurz does not connect there: 127.0.0.1 is a loopback address (an import "
        "reaches private addresses only with KURZ_IMPORT_ALLOW_PRIVATE, cloud metadata "
        "ones never)"
    )
    assert shlink.asked == []
    allowed = kind.open(Opening(settings=settings, allow_private=True))
    assert isinstance(allowed, ShlinkApi)
    assert await read(allowed) == EXPECTED


def test_the_kind_is_registered() -> None:
    kind = KINDS["shlink"]
    assert kind is shlink_api.KIND
    assert (kind.source, kind.takes_file, kind.settings) == ("shlink", False, ShlinkSettings)
    assert API_KEY not in repr(
        ShlinkSettings(api_url="https://s.example", api_key=SecretStr(API_KEY))
    )
