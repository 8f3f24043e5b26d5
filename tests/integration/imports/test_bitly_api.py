"""The Bitly API source against a local server answering as Bitly's API v4 documents:
GET /v4/user, /v4/groups/{guid}/bitlinks (pages by `search_after`) and
/v4/bitlinks/{bitlink}/clicks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from kurz.imports import bitly_api
from kurz.imports.bitly_api import BitlyApi, BitlySettings
from kurz.imports.kinds import KINDS
from kurz.imports.sources import (
    Clicks,
    DayClicks,
    Opening,
    Page,
    Record,
    SourceError,
    Unreadable,
)
from tests.integration.imports.apifakes import BITLY_GROUP as GROUP
from tests.integration.imports.apifakes import BITLY_TOKEN as TOKEN
from tests.integration.imports.apifakes import FakeBitly, bitlink
from tests.integration.imports.apiserver import Answer, ApiServer, serving

LINKS = [
    bitlink("bit.ly/3aB1", "https://example.com/one", title="One", tags=["news", "2020"]),
    bitlink(
        "bit.ly/3aB2",
        "https://example.com/two",
        custom_bitlinks=["https://bit.ly/spring-sale"],
        created_at="2021-03-04T05:06:07+0000",
    ),
    bitlink("j.mp/3aB3", "https://example.com/three", archived=True, created_at=None),
    bitlink("go.brand.co/4cD5", "https://example.com/four"),
    bitlink("bit.ly/3aB6", "https://example.com/six"),
]

CLICKS = {
    "bit.ly/3aB1": [
        # A day as Bitly writes it, whatever its offset.
        {"date": "2024-05-04T00:00:00+0200", "clicks": 2},
        {"date": "2024-05-03T00:00:00+0000", "clicks": 4},
        {"date": "2024-05-02T00:00:00+0000", "clicks": 0},
        {"date": "2024-05-01T00:00:00+0000", "clicks": 7},
    ],
    "bit.ly/3aB2": [{"date": "2024-05-01T00:00:00+0000", "clicks": 0}],
    "go.brand.co/4cD5": [{"date": "2023-12-31T00:00:00+0000", "clicks": 12}],
    "bit.ly/3aB6": [],
}


def source(server: ApiServer, *, token: str = TOKEN, **settings: Any) -> BitlyApi:
    made = BitlySettings(token=SecretStr(token), api_url=f"{server.url}/v4", **settings)
    return BitlyApi(made, allow_private=True)


async def read(found: BitlyApi, after: str | None = None) -> list[Page]:
    try:
        return [page async for page in found.pages(after)]
    finally:
        await found.aclose()


@pytest.fixture
async def bitly() -> AsyncIterator[ApiServer]:
    async with serving(FakeBitly(LINKS, CLICKS)) as server:
        yield server


def without_clicks(pages: list[Page]) -> list[Page]:
    return [
        Page([item for item in page.items if not isinstance(item, Clicks)], page.position)
        for page in pages
    ]


EXPECTED = [
    Page(
        [
            Record(
                place="bit.ly/3aB1",
                source_id="bit.ly/3aB1",
                url="https://example.com/one",
                alias="3aB1",
                title="One",
                tags=("news", "2020"),
                created_at=datetime(2020, 1, 2, 23, 51, 47, tzinfo=UTC),
            ),
            Clicks(
                source_id="bit.ly/3aB1",
                daily=[
                    DayClicks(date(2024, 5, 1), 7),
                    DayClicks(date(2024, 5, 3), 4),
                    DayClicks(date(2024, 5, 4), 2),
                ],
            ),
            Record(
                place="bit.ly/3aB2",
                source_id="bit.ly/3aB2",
                url="https://example.com/two",
                alias="spring-sale",
                created_at=datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC),
            ),
        ],
        "search_after=tok2",
    ),
    Page(
        [
            Record(
                place="j.mp/3aB3",
                source_id="j.mp/3aB3",
                url="https://example.com/three",
                alias="3aB3",
            ),
            Record(
                place="go.brand.co/4cD5",
                source_id="go.brand.co/4cD5",
                url="https://example.com/four",
                alias="4cD5",
                domain="go.brand.co",
                created_at=datetime(2020, 1, 2, 23, 51, 47, tzinfo=UTC),
            ),
            Clicks(source_id="go.brand.co/4cD5", daily=[DayClicks(date(2023, 12, 31), 12)]),
        ],
        "search_after=tok4",
    ),
    Page(
        [
            Record(
                place="bit.ly/3aB6",
                source_id="bit.ly/3aB6",
                url="https://example.com/six",
                alias="3aB6",
                created_at=datetime(2020, 1, 2, 23, 51, 47, tzinfo=UTC),
            ),
        ],
        "end",
    ),
]


async def test_every_page_with_each_links_clicks_per_day(bitly: ApiServer) -> None:
    assert await read(source(bitly)) == EXPECTED
    # The token's default group, then each page and its links' clicks, in order.
    assert bitly.paths() == [
        "/v4/user",
        f"/v4/groups/{GROUP}/bitlinks",
        "/v4/bitlinks/bit.ly/3aB1/clicks",
        "/v4/bitlinks/bit.ly/3aB2/clicks",
        f"/v4/groups/{GROUP}/bitlinks",
        "/v4/bitlinks/j.mp/3aB3/clicks",
        "/v4/bitlinks/go.brand.co/4cD5/clicks",
        f"/v4/groups/{GROUP}/bitlinks",
        "/v4/bitlinks/bit.ly/3aB6/clicks",
    ]
    assert [asked.query for asked in bitly.asked if asked.path.endswith("/bitlinks")] == [
        {"size": "100", "archived": "both"},
        {"size": "100", "archived": "both", "search_after": "tok2"},
        {"size": "100", "archived": "both", "search_after": "tok4"},
    ]


async def test_resuming_after_a_page_reads_exactly_the_pages_after_it(bitly: ApiServer) -> None:
    first = await read(source(bitly))
    assert await read(source(bitly), first[0].position) == first[1:]
    assert await read(source(bitly), first[1].position) == first[2:]
    assert await read(source(bitly), first[2].position) == []


async def test_a_named_group_is_read_without_asking_for_the_default(bitly: ApiServer) -> None:
    assert await read(source(bitly, group_guid=GROUP)) == EXPECTED
    assert "/v4/user" not in bitly.paths()


async def test_a_429_is_asked_again_after_retry_after(bitly: ApiServer) -> None:
    bitly.once = [
        Answer(429, b'{"message": "RATE_LIMIT_EXCEEDED"}', {"retry-after": "0"}),
        Answer(503, b"", {"retry-after": "0"}),
    ]
    assert await read(source(bitly)) == EXPECTED
    assert bitly.paths()[:3] == ["/v4/user", "/v4/user", "/v4/user"]


async def test_without_clicks_only_the_links_are_asked_for(bitly: ApiServer) -> None:
    assert await read(source(bitly, clicks=False)) == without_clicks(EXPECTED)
    assert not [path for path in bitly.paths() if path.endswith("/clicks")]


async def test_clicks_refused_to_the_token_fail_the_import_saying_what_to_do() -> None:
    fake = FakeBitly(LINKS, CLICKS)
    fake.no_clicks = True
    async with serving(fake) as server:
        with pytest.raises(SourceError) as caught:
            await read(source(server))
    assert str(caught.value) == (
        "Bitly answered HTTP 402 for "
        f"{server.url}/v4/bitlinks/bit.ly/3aB1/clicks (UPGRADE_REQUIRED), asked for the "
        'clicks of bit.ly/3aB1; import with "clicks": false to bring the links without '
        "their clicks"
    )


async def test_a_token_bitly_refuses_fails_the_import_saying_so(bitly: ApiServer) -> None:
    with pytest.raises(SourceError) as caught:
        await read(source(bitly, token="not-the-token"))
    assert str(caught.value) == (
        "Bitly answered HTTP 403: the token was refused "
        "(FORBIDDEN: You are currently forbidden to access this resource.)"
    )


async def test_a_malformed_bitlink_is_unreadable_and_the_rest_goes_on() -> None:
    links = [
        bitlink("bit.ly/ok1", "https://example.com/1"),
        bitlink("bit.ly/bad1", None),
        {"long_url": "https://example.com/no-id"},
        bitlink("bit.ly/bad2", "https://example.com/2", created_at="yesterday"),
        "not an object",
        bitlink("bit.ly/bad3", "https://example.com/3"),
        bitlink("bit.ly/ok2", "https://example.com/4", tags="one"),
    ]
    clicks: dict[str, list[Any]] = {"bit.ly/bad3": [{"date": "2024-05-01", "clicks": -1}]}
    async with serving(FakeBitly(links, clicks, per_page=4)) as server:
        pages = await read(source(server))
    created = datetime(2020, 1, 2, 23, 51, 47, tzinfo=UTC)
    assert pages == [
        Page(
            [
                Record(
                    place="bit.ly/ok1",
                    source_id="bit.ly/ok1",
                    url="https://example.com/1",
                    alias="ok1",
                    created_at=created,
                ),
                Unreadable("bit.ly/bad1", "long_url is missing", "bit.ly/bad1"),
                Unreadable("link 3 of the page at the start", "id is missing"),
                Unreadable(
                    "bit.ly/bad2",
                    "created_at is not an ISO 8601 time: 'yesterday'",
                    "bit.ly/bad2",
                ),
            ],
            "search_after=tok4",
        ),
        Page(
            [
                Unreadable(
                    "link 1 of the page at search_after=tok4",
                    "not an object but the string 'not an object'",
                ),
                Unreadable("bit.ly/bad3", "its clicks: clicks is negative (-1)", "bit.ly/bad3"),
                Unreadable(
                    "bit.ly/ok2", "tags is the string 'one', not a list of strings", "bit.ly/ok2"
                ),
            ],
            "end",
        ),
    ]


async def test_total_is_what_bitlys_pagination_says(bitly: ApiServer) -> None:
    found = source(bitly)
    try:
        assert await found.total() == 5
    finally:
        await found.aclose()


async def test_a_position_that_is_not_bitlys_fails(bitly: ApiServer) -> None:
    with pytest.raises(SourceError, match="is not a position in Bitly's list of links"):
        await read(source(bitly), "offset=5")


async def test_a_private_address_is_refused_unless_allowed(bitly: ApiServer) -> None:
    kind = KINDS["bitly"]
    settings = BitlySettings(token=SecretStr(TOKEN), api_url=f"{bitly.url}/v4")
    refusing = kind.open(Opening(settings=settings, allow_private=False))
    with pytest.raises(SourceError) as caught:
        [page async for page in refusing.pages(None)]
    await refusing.aclose()
    assert str(caught.value) == (
        "Bitly: kurz does not connect there: 127.0.0.1 is a loopback address (an import "
        "reaches private addresses only with KURZ_IMPORT_ALLOW_PRIVATE, cloud metadata "
        "ones never)"
    )
    assert bitly.asked == []
    allowed = kind.open(Opening(settings=settings, allow_private=True))
    assert isinstance(allowed, BitlyApi)
    assert await read(allowed) == EXPECTED


def test_the_kind_is_registered() -> None:
    kind = KINDS["bitly"]
    assert kind is bitly_api.KIND
    assert (kind.source, kind.takes_file, kind.settings) == ("bitly", False, BitlySettings)
    settings = BitlySettings.model_validate({"token": TOKEN})
    assert settings.token.get_secret_value() == TOKEN
    assert settings.api_url == "https://api-ssl.bitly.com/v4"
    assert TOKEN not in repr(settings)
