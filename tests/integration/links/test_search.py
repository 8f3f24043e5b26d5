"""Searching links (GET /api/v1/links with q, several tags and sort), over both
deployments: what a query matches, how pages follow each other in every order, whose
links a search reads, and the refusals."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from kurz.db import Database
from kurz.db.keyset import encode_cursor
from kurz.db.tables import links
from kurz.links import search
from tests.integration.auth.support import admin, member
from tests.integration.links.support import create
from tests.support import FakeClock

LINKS = "/api/v1/links"
PROBLEM = "application/problem+json"
# More pages than any test makes: a cursor that never ends fails, rather than loops.
MOST_PAGES = 30


async def found(api: httpx.AsyncClient, **params: Any) -> list[str]:
    """The codes of every page a listing gives, in order, checking each page's size."""
    codes: list[str] = []
    limit = params.get("limit", 20)
    for _ in range(MOST_PAGES):
        response = await api.get(LINKS, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        items = [item["code"] for item in body["items"]]
        codes += items
        if body["next_cursor"] is None:
            assert len(items) <= limit
            return codes
        assert len(items) == limit
        params = {**params, "cursor": body["next_cursor"]}
    raise AssertionError(f"more than {MOST_PAGES} pages")


# What a query matches


async def test_q_matches_the_code_the_url_the_title_and_a_tag(api: httpx.AsyncClient) -> None:
    by_code = await create(api, alias="spring-sale")
    # Aliases: a generated code could hold a short query by chance.
    by_url = await create(api, alias="by-url", url="https://shop.example/spring/shoes")
    by_title = await create(api, alias="by-title", og_title="Our Spring catalogue")
    by_tag = await create(api, alias="by-tag", tags=["springtime"])
    await create(
        api, alias="unrelated", url="https://example.com/autumn", og_title="Autumn", tags=["fall"]
    )

    expected = [by_tag["code"], by_title["code"], by_url["code"], by_code["code"]]
    assert await found(api, q="spring") == expected
    # Shorter than a trigram: read row by row, the same answer.
    assert await found(api, q="sp") == expected
    assert await found(api, q="shoes") == [by_url["code"]]
    assert await found(api, q="catalogue") == [by_title["code"]]
    assert await found(api, q="ngtim") == [by_tag["code"]]
    assert await found(api, q="nowhere") == []


@pytest.mark.parametrize("most_places", [0, 2000], ids=["as-common", "through-the-index"])
async def test_a_query_of_one_or_two_characters_finds_them_at_the_end_of_a_field(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, most_places: int
) -> None:
    # The last characters of a link's text begin no trigram of their own (ADR 0018).
    ends_title = await create(api, alias="title-end", og_title="Plan Q")
    ends_tag = await create(api, alias="tag-end", og_title="Plan", tags=["auto-zq"])
    in_code = await create(api, alias="zq-code")
    await create(api, alias="none-here", og_title="Plan", tags=["auto"])
    # Common (read in order) or rare (found through the index) on SQLite: the same.
    monkeypatch.setattr(search, "_MOST_PLACES", most_places)
    assert await found(api, q="zq") == [in_code["code"], ends_tag["code"]]
    assert await found(api, q="ZQ", sort="code") == [ends_tag["code"], in_code["code"]]
    assert await found(api, q="q") == [in_code["code"], ends_tag["code"], ends_title["code"]]
    assert await found(api, q="n q") == [ends_title["code"]]
    assert await found(api, q="é") == []


async def test_q_ignores_case_and_surrounding_spaces(api: httpx.AsyncClient) -> None:
    upper = await create(api, alias="loud", og_title="LOUD Title")
    german = await create(api, alias="german", og_title="Große Straße")
    greek = await create(api, alias="greek", tags=["ΣΟΦΙΑ"])
    assert await found(api, q="loud title") == [upper["code"]]
    assert await found(api, q="  Loud ") == [upper["code"]]
    # Unicode case folding: sharp s is ss, capital sigma is small sigma.
    assert await found(api, q="STRASSE") == [german["code"]]
    assert await found(api, q="straße") == [german["code"]]
    assert await found(api, q="ss") == [german["code"]]
    assert await found(api, q="σοφ") == [greek["code"]]
    # Only spaces: no query at all.
    assert await found(api, q="   ") == [greek["code"], german["code"], upper["code"]]


@pytest.mark.parametrize(
    ("q", "matches"),
    [
        ("%", ["percent"]),
        ("50%", ["percent"]),
        ("_", ["underscore"]),
        ("a_b", ["underscore"]),
        ('"', ["quotes"]),
        ('say "hi"', ["quotes"]),
        ("'", ["apostrophe"]),
        ("it's", ["apostrophe"]),
        ("\\", ["backslash"]),
        ("c:\\d", ["backslash"]),
        ("*", []),
        ("a b", []),
    ],
)
async def test_wildcards_and_quotes_are_plain_characters(
    api: httpx.AsyncClient, q: str, matches: list[str]
) -> None:
    titles = {
        "percent": "50% off",
        "underscore": "a_b",
        "quotes": 'say "hi"',
        "apostrophe": "it's here",
        "backslash": "c:\\dir",
        # What a pattern would match if the characters above were wildcards.
        "plain": "50 percent, aXb, say hi, its here, c:dir, ab",
    }
    codes = {name: (await create(api, og_title=title))["code"] for name, title in titles.items()}
    assert set(await found(api, q=q)) == {codes[name] for name in matches}


async def test_a_query_matches_as_a_whole_not_by_its_pieces(api: httpx.AsyncClient) -> None:
    # Every three letters of each query are in these, but no query is.
    await create(api, alias="pieces", og_title="aba bab", tags=["aaa"])
    whole = await create(api, alias="whole", og_title="xabab")
    assert await found(api, q="abab") == [whole["code"]]
    assert await found(api, q="aaaa") == []


async def test_several_tags_find_the_links_carrying_every_one(api: httpx.AsyncClient) -> None:
    red = await create(api, tags=["red"])
    red_blue = await create(api, tags=["red", "blue"])
    all_three = await create(api, tags=["blue", "green", "red"])
    await create(api, tags=["blue"])
    assert await found(api, tag="red") == [all_three["code"], red_blue["code"], red["code"]]
    assert await found(api, tag=["red", "blue"]) == [all_three["code"], red_blue["code"]]
    assert await found(api, tag=["blue", "red", "blue"]) == [all_three["code"], red_blue["code"]]
    assert await found(api, tag=["red", "green", "blue"]) == [all_three["code"]]
    assert await found(api, tag=["red", "yellow"]) == []
    # Tags are matched as stored: exactly.
    assert await found(api, tag="RED") == []


async def test_q_and_tags_together(api: httpx.AsyncClient) -> None:
    await create(api, alias="plan", og_title="Launch plan", tags=["internal"])
    public = await create(api, alias="post", og_title="Launch post", tags=["blog", "public"])
    await create(api, alias="hiring", og_title="Hiring post", tags=["blog", "public"])
    assert await found(api, q="launch", tag=["blog", "public"]) == [public["code"]]
    assert await found(api, q="la", tag="blog") == [public["code"]]


async def test_a_changed_link_is_found_by_what_it_says_now(api: httpx.AsyncClient) -> None:
    link = await create(api, alias="changing", og_title="Before", tags=["old"])
    code = link["code"]
    changed = await api.patch(
        f"{LINKS}/{code}",
        json={"og_title": "After", "tags": ["new"], "url": "https://example.com/moved"},
        headers={"If-Match": '"1"'},
    )
    assert changed.status_code == 200, changed.text
    assert await found(api, q="before") == []
    assert await found(api, q="old") == []
    assert await found(api, q="after") == [code]
    assert await found(api, q="new") == [code]
    assert await found(api, q="moved") == [code]
    assert (await api.delete(f"{LINKS}/{code}")).status_code == 204
    assert await found(api, q="after") == []
    assert await found(api, q="af") == []


# Orders and pages


async def make_ordered(api: httpx.AsyncClient) -> list[dict[str, Any]]:
    """Links made one after another, their codes in an order that is not theirs
    (lowercase letters and digits sort alike in every collation)."""
    names = ["kiwi", "apple", "mango", "banana", "cherry", "7up", "fig", "date", "lime"]
    return [
        await create(api, alias=name, og_title=f"fruit {name}", tags=["fruit"]) for name in names
    ]


@pytest.mark.parametrize(
    "filters",
    [{}, {"q": "fruit"}, {"q": "an"}, {"tag": "fruit"}, {"q": "fruit", "tag": "fruit"}],
    ids=["all", "q", "short-q", "tag", "q-tag"],
)
async def test_every_sort_pages_through_every_link_once(
    api: httpx.AsyncClient, filters: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    made = await make_ordered(api)
    other = await create(api, alias="zzz-other", og_title="vegetable")
    codes = [link["code"] for link in made]
    if not filters:
        codes.append(other["code"])
    if filters.get("q") == "an":
        codes = [code for code in codes if "an" in code]
    for limit in (1, 4, 20):
        assert await found(api, limit=limit, **filters) == codes[::-1]
        assert await found(api, limit=limit, sort="newest", **filters) == codes[::-1]
        assert await found(api, limit=limit, sort="oldest", **filters) == codes
        # SQLite finds many matches by code walking the index, few by sorting them.
        for few in (2, 1000):
            monkeypatch.setattr(search, "_FEW", few)
            assert await found(api, limit=limit, sort="code", **filters) == sorted(codes)


def in_order(codes: Sequence[str], sort: str) -> list[str]:
    """Codes given in the order their links were made, in `sort`'s order."""
    return {"newest": list(codes)[::-1], "oldest": list(codes), "code": sorted(codes)}[sort]


async def test_links_made_while_paging_shift_no_later_page(api: httpx.AsyncClient) -> None:
    made = [link["code"] for link in await make_ordered(api)]
    for sort in search.SORTS:
        first = (await api.get(LINKS, params={"q": "fruit", "sort": sort, "limit": 4})).json()
        shown = [item["code"] for item in first["items"]]
        assert shown == in_order(made, sort)[:4]
        # One link sorting before the page's end, one after (by code; by time, both
        # are newest).
        made += [
            (await create(api, alias=f"aaa-{sort}", og_title="fruit"))["code"],
            (await create(api, alias=f"zzz-{sort}", og_title="fruit"))["code"],
        ]
        rest = await found(api, q="fruit", sort=sort, limit=4, cursor=first["next_cursor"])
        # The cursor is a place in the order: what sorts after it, and nothing else.
        now = in_order(made, sort)
        assert rest == now[now.index(shown[-1]) + 1 :]


# Whose links


async def test_a_search_reads_only_the_callers_links(
    app: FastAPI, clock: FakeClock, client_for: Any
) -> None:
    db = app.state.kurz.db
    alice = await member(db, clock, "alice@example.com")
    bob = await member(db, clock, "bob@example.com")
    root = await admin(db, clock, "root@example.com")
    async with client_for(alice.secret) as as_alice, client_for(bob.secret) as as_bob:
        alices = [
            (await create(as_alice, og_title=f"shared word {n}", tags=["team"]))["code"]
            for n in range(5)
        ]
        bobs = (await create(as_bob, og_title="shared word bob", tags=["team"]))["code"]
        for params in ({"q": "shared"}, {"q": "sh"}, {"tag": "team"}, {"q": "word", "tag": "team"}):
            for sort in search.SORTS:
                assert await found(as_bob, sort=sort, **params) == [bobs]
                assert sorted(await found(as_alice, sort=sort, limit=2, **params)) == sorted(alices)
        # Bob's own cursor cannot reach Alice's links either.
        page = (await as_bob.get(LINKS, params={"q": "shared", "limit": 1})).json()
        assert page["next_cursor"] is None
    async with client_for(root.secret) as as_root:
        assert sorted(await found(as_root, q="shared word")) == sorted([*alices, bobs])


# Refusals


def assert_refused(response: httpx.Response, field: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == "/problems/validation-error"
    assert field in {error["field"].split(".")[0] for error in body["errors"]}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"q": "x" * (search.MAX_QUERY + 1)}, "q"),
        ({"q": "tab\there"}, "q"),
        ({"q": "new\nline"}, "q"),
        ({"sort": "clicks"}, "sort"),
        ({"sort": "-created"}, "sort"),
        ({"tag": [f"t{n}" for n in range(21)]}, "tag"),
        ({"tag": ["ok", "   "]}, "tag"),
        ({"tag": ["ok", "t" * 65]}, "tag"),
    ],
    ids=["long-q", "tab", "newline", "sort", "minus-sort", "tags", "blank-tag", "long-tag"],
)
async def test_bad_input_is_a_422(
    api: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    assert_refused(await api.get(LINKS, params=params), field)


async def test_a_query_of_the_longest_length_is_taken(api: httpx.AsyncClient) -> None:
    title = "y" * search.MAX_QUERY
    link = await create(api, og_title=title)
    assert await found(api, q=title) == [link["code"]]


async def test_a_cursor_from_another_sort_or_search_is_refused(api: httpx.AsyncClient) -> None:
    await make_ordered(api)
    searches: list[dict[str, Any]] = [
        {},
        {"sort": "oldest"},
        {"sort": "code"},
        {"q": "fruit"},
        {"q": "frui"},
        {"tag": "fruit"},
        {"q": "fruit", "sort": "code"},
    ]
    for params in searches:
        cursor = (await api.get(LINKS, params={**params, "limit": 1})).json()["next_cursor"]
        taken = await api.get(LINKS, params={**params, "limit": 1, "cursor": cursor})
        assert taken.status_code == 200, params
        for other in searches:
            if other != params:
                response = await api.get(LINKS, params={**other, "limit": 1, "cursor": cursor})
                assert_refused(response, "cursor")
                assert "another sort" in response.json()["errors"][0]["message"]


async def test_an_id_cursor_from_before_searching_still_pages_newest_first(
    api: httpx.AsyncClient, db: Database
) -> None:
    made = [link["code"] for link in await make_ordered(api)]
    async with db.read() as conn:
        rows = await conn.execute(sa.select(links.c.code, links.c.id))
        ids: dict[str, int] = dict(rows.all())
    # A cursor as kurz made them before searching: "id:<last id>", for any filters.
    old = encode_cursor(ids[made[-3]])
    assert await found(api, cursor=old) == made[::-1][3:]
    assert await found(api, cursor=old, tag="fruit", q="fruit") == made[::-1][3:]
    assert_refused(await api.get(LINKS, params={"cursor": old, "sort": "oldest"}), "cursor")
    assert_refused(await api.get(LINKS, params={"cursor": old, "sort": "code"}), "cursor")
