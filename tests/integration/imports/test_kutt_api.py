"""The Kutt API source against a local server answering as Kutt's API v2 does
(server/handlers/links.handler.js `get`, server/utils/utils.js `sanitize.link`):
GET /api/v2/links?limit=&skip= with X-API-KEY, newest first, at most 50 a request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from kurz.imports import kutt_api
from kurz.imports.kinds import KINDS
from kurz.imports.kutt_api import KuttApi, KuttSettings
from kurz.imports.sources import Clicks, Opening, Page, Record, SourceError, Unreadable
from tests.integration.imports.apifakes import KUTT_KEY as API_KEY
from tests.integration.imports.apifakes import FakeKutt, link
from tests.integration.imports.apiserver import Answer, ApiServer, serving

LINKS = [
    link(7, description="The seventh", visit_count=12),
    link(6, domain="go.example.org", address="promo"),
    link(5, password=True, visit_count=3),
    link(4, expire_in="2030-06-01 12:00:00"),
    link(3, banned=True),
    link(2, expire_in="2030-07-01T08:30:00.000Z", visit_count=1),
    link(1),
]


def source(server: ApiServer, *, api_key: str = API_KEY) -> KuttApi:
    return KuttApi(KuttSettings(api_url=server.url, api_key=SecretStr(api_key)), allow_private=True)


async def read(found: KuttApi, after: str | None = None) -> list[Page]:
    try:
        return [page async for page in found.pages(after)]
    finally:
        await found.aclose()


@pytest.fixture
async def kutt(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ApiServer]:
    # Pages of three links, from requests of two: several of each with seven links.
    monkeypatch.setattr(kutt_api, "PAGE_SIZE", 3)
    async with serving(FakeKutt(LINKS, most=2)) as server:
        yield server


def uuid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


EXPECTED = [
    Page(
        [
            Record(
                place="https://kutt.test/a7",
                source_id=uuid(7),
                url="https://example.com/7",
                alias="a7",
                title="The seventh",
                created_at=datetime(2024, 1, 8, 10, tzinfo=UTC),
            ),
            Clicks(source_id=uuid(7), total=12),
            Record(
                place="https://go.example.org/promo",
                source_id=uuid(6),
                url="https://example.com/6",
                alias="promo",
                domain="go.example.org",
                created_at=datetime(2024, 1, 7, 10, tzinfo=UTC),
            ),
            Unreadable(
                "https://kutt.test/a5",
                "protected by a password, which Kutt's API does not give",
                uuid(5),
            ),
            Record(
                place="https://kutt.test/a4",
                source_id=uuid(4),
                url="https://example.com/4",
                alias="a4",
                created_at=datetime(2024, 1, 5, 10, tzinfo=UTC),
                expires_at=datetime(2030, 6, 1, 12, tzinfo=UTC),
            ),
        ],
        "4",
    ),
    Page(
        [
            Unreadable("https://kutt.test/a3", "banned in Kutt", uuid(3)),
            Record(
                place="https://kutt.test/a2",
                source_id=uuid(2),
                url="https://example.com/2",
                alias="a2",
                created_at=datetime(2024, 1, 3, 10, tzinfo=UTC),
                expires_at=datetime(2030, 7, 1, 8, 30, tzinfo=UTC),
            ),
            Clicks(source_id=uuid(2), total=1),
            Record(
                place="https://kutt.test/a1",
                source_id=uuid(1),
                url="https://example.com/1",
                alias="a1",
                created_at=datetime(2024, 1, 2, 10, tzinfo=UTC),
            ),
        ],
        "7",
    ),
]


async def test_every_link_page_by_page(kutt: ApiServer) -> None:
    assert await read(source(kutt)) == EXPECTED
    # Kutt answered two a request, not the 50 asked for: the source goes by `total`.
    assert [(asked.query["limit"], asked.query["skip"]) for asked in kutt.asked] == [
        ("50", "0"),
        ("50", "2"),
        ("50", "4"),
        ("50", "6"),
    ]


async def test_resuming_after_a_page_reads_exactly_the_pages_after_it(kutt: ApiServer) -> None:
    first = await read(source(kutt))
    assert await read(source(kutt), first[0].position) == first[1:]
    assert await read(source(kutt), first[1].position) == []


async def test_pages_are_500_links_from_requests_of_50() -> None:
    links = [link(n) for n in range(1120, 0, -1)]
    async with serving(FakeKutt(links)) as server:
        pages = await read(source(server))
        assert len(server.asked) == 23
    assert [(len(page.items), page.position) for page in pages] == [
        (500, "500"),
        (500, "1000"),
        (120, "1120"),
    ]
    assert [item.source_id for page in pages for item in page.items] == [
        uuid(n) for n in range(1120, 0, -1)
    ]


async def test_a_429_is_asked_again_after_retry_after(kutt: ApiServer) -> None:
    kutt.once = [Answer(429, b'{"error": "Too many requests."}', {"retry-after": "0"})]
    assert await read(source(kutt)) == EXPECTED
    assert kutt.asked[0].query == kutt.asked[1].query == {"limit": "50", "skip": "0"}


async def test_a_key_kutt_refuses_fails_the_import_saying_so(kutt: ApiServer) -> None:
    with pytest.raises(SourceError) as caught:
        await read(source(kutt, api_key="wrong"))
    assert str(caught.value) == "Kutt answered HTTP 401: the API key was refused (Unauthorized.)"


async def test_a_malformed_link_is_unreadable_and_the_rest_goes_on() -> None:
    links = [
        link(4, target=None),
        {"address": "no-id", "target": "https://example.com/x"},
        link(3, visit_count="many"),
        link(2, created_at="2024-13-45"),
        link(1),
    ]
    async with serving(FakeKutt(links)) as server:
        pages = await read(source(server))
    assert pages == [
        Page(
            [
                Unreadable("https://kutt.test/a4", "target is missing", uuid(4)),
                Unreadable("link 2", "id is missing"),
                Unreadable(
                    "https://kutt.test/a3",
                    "visit_count is the string 'many', not a whole number",
                    uuid(3),
                ),
                Unreadable(
                    "https://kutt.test/a2",
                    "created_at is not an ISO 8601 time: '2024-13-45'",
                    uuid(2),
                ),
                Record(
                    place="https://kutt.test/a1",
                    source_id=uuid(1),
                    url="https://example.com/1",
                    alias="a1",
                    created_at=datetime(2024, 1, 2, 10, tzinfo=UTC),
                ),
            ],
            "5",
        )
    ]


async def test_an_empty_kutt_has_no_pages_and_total_says_how_many() -> None:
    async with serving(FakeKutt([])) as server:
        assert await read(source(server)) == []
    async with serving(FakeKutt(LINKS)) as server:
        found = source(server)
        try:
            assert await found.total() == 7
        finally:
            await found.aclose()


async def test_a_position_that_is_not_kutts_fails(kutt: ApiServer) -> None:
    with pytest.raises(SourceError, match="is not a position in Kutt's list of links"):
        await read(source(kutt), "page=2")


async def test_a_private_address_is_refused_unless_allowed(kutt: ApiServer) -> None:
    kind = KINDS["kutt-api"]
    settings = KuttSettings(api_url=kutt.url, api_key=SecretStr(API_KEY))
    refusing = kind.open(Opening(settings=settings, allow_private=False))
    with pytest.raises(SourceError) as caught:
        [page async for page in refusing.pages(None)]
    await refusing.aclose()
    assert str(caught.value) == (
        "Kutt: kurz does not connect there: 127.0.0.1 is a loopback address (an import "
        "reaches private addresses only with KURZ_IMPORT_ALLOW_PRIVATE, cloud metadata "
        "ones never)"
    )
    assert kutt.asked == []
    allowed = kind.open(Opening(settings=settings, allow_private=True))
    assert isinstance(allowed, KuttApi)
    assert await read(allowed) == EXPECTED


def test_the_kind_is_registered() -> None:
    kind = KINDS["kutt-api"]
    assert kind is kutt_api.KIND
    assert (kind.source, kind.takes_file, kind.settings) == ("kutt", False, KuttSettings)
    assert API_KEY not in repr(
        KuttSettings(api_url="https://kutt.example", api_key=SecretStr(API_KEY))
    )
