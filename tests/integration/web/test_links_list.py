"""The links list (/_/links) and its bulk actions (/_/links): plain GET forms and
links that work without JavaScript, the htmx partial, tenants kept apart, and every bad
input a page with its status, never a 500. On SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest
from fastapi import FastAPI

from kurz.auth.models import Principal, scopes_for
from kurz.db import Database
from kurz.errors import Problem
from kurz.links.domain_models import DomainCreate
from kurz.links.models import LinkCreate, LinkRead
from kurz.links.service import Links
from kurz.web.links_list import MAX_Q
from tests.integration.web.people import Browser, assert_page, browser_of
from tests.support import FakeClock

Form = dict[str, str | list[str]]


def owner(browser: Browser, *, admin: bool = False) -> Principal:
    return Principal(
        user_id=browser.user_id,
        role="admin" if admin else "member",
        scopes=frozenset(scopes_for(admin=admin)),
        name="test",
    )


async def shorten(
    app: FastAPI,
    browser: Browser,
    path: str,
    *,
    tags: Sequence[str] = (),
    domain: str | None = None,
    title: str | None = None,
) -> LinkRead:
    links: Links = app.state.kurz.links
    link_in = LinkCreate(
        url=f"https://example.com/{path}", tags=list(tags), domain=domain, og_title=title
    )
    done = await links.create(principal=owner(browser), link_in=link_in, key=None)
    return done.value


async def still_there(app: FastAPI, browser: Browser, link: LinkRead) -> LinkRead | None:
    links: Links = app.state.kurz.links
    try:
        return await links.get(principal=owner(browser), code=link.code, domain=link.domain)
    except Problem as problem:
        status = problem.status
    assert status == 404
    return None


def picked(page: str) -> list[str]:
    """The rows' checkbox values (`<host>/<code>`), in the table's order."""
    return re.findall(r'<input type="checkbox" name="link" value="([^"]*)"', page)


def next_page(page: str) -> str | None:
    found = re.search(r'<a rel="next" href="([^"]*)">Next page</a>', page)
    return None if found is None else found.group(1).replace("&amp;", "&")


async def test_the_list_shows_a_members_own_links_and_an_admin_all(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with (
        browser_of(app, db, clock, "ada@example.com") as ada,
        browser_of(app, db, clock, "bob@example.com") as bob,
        browser_of(app, db, clock, "root@example.com", role="admin") as root,
    ):
        mine = await shorten(app, ada, "ada?a=1&b=2", tags=["work", "q&a"], title="Ada's <b>")
        other = await shorten(app, ada, "ada/2")
        theirs = await shorten(app, bob, "bob")

        page = assert_page(await ada.http.get("/_/links"))
        assert picked(page) == [f"/{other.code}", f"/{mine.code}"]
        assert theirs.code not in page
        assert f'href="/_/links/{mine.code}"' in page
        assert f'data-copy="{mine.short_url}"' in page
        assert 'title="https://example.com/ada?a=1&amp;b=2"' in page
        assert "Ada&#39;s &lt;b&gt;" in page
        assert 'href="/_/links?tag=q%26a">q&amp;a</a>' in page
        assert f'<time datetime="{mine.created_at.isoformat()}">' in page
        assert 'data-select-all="link"' in page
        assert 'action="/_/links"' in page
        assert f'name="csrf_token" value="{ada.csrf}"' in page

        everyone = assert_page(await root.http.get("/_/links"))
        assert set(picked(everyone)) == {f"/{mine.code}", f"/{other.code}", f"/{theirs.code}"}


async def test_a_new_member_is_offered_a_new_link(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        page = assert_page(await ada.http.get("/_/links"))
        assert "You have no links yet." in page
        assert 'href="/_/new"' in page
        assert "<table" not in page


async def test_a_tag_narrows_the_list_and_no_match_offers_to_clear(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        work = await shorten(app, ada, "work", tags=["work"])
        await shorten(app, ada, "home", tags=["home"])

        page = assert_page(await ada.http.get("/_/links", params={"tag": "work"}))
        assert picked(page) == [f"/{work.code}"]
        # The form shows the tag it narrows by, to be unticked.
        assert 'name="tag" value="work" checked' in page
        # An empty "add a tag" field, as the form sends it, narrows by nothing more.
        page = assert_page(await ada.http.get("/_/links?tag=work&tag="))
        assert picked(page) == [f"/{work.code}"]

        none = assert_page(await ada.http.get("/_/links", params={"tag": "nobody's"}))
        assert "No link matches." in none
        assert '<a class="button secondary" href="/_/links">Clear filters</a>' in none


async def test_a_domain_narrows_the_list_and_its_links_pages_name_it(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    await app.state.kurz.domain_admin.create(DomainCreate(host="go.example"))
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        there = await shorten(app, ada, "there", domain="go.example")
        here = await shorten(app, ada, "here")

        page = assert_page(await ada.http.get("/_/links"))
        assert picked(page) == [f"/{here.code}", f"go.example/{there.code}"]
        assert f'href="/_/links/{there.code}?domain=go.example"' in page
        assert '<option value="go.example">go.example</option>' in page

        only = assert_page(await ada.http.get("/_/links", params={"domain": "GO.example."}))
        assert picked(only) == [f"go.example/{there.code}"]
        assert '<option value="go.example" selected>' in only
        default = assert_page(await ada.http.get("/_/links", params={"domain": "kurz.test"}))
        assert picked(default) == [f"/{here.code}"]

        for host in ("nowhere.example", "not a host"):
            refused = assert_page(await ada.http.get("/_/links", params={"domain": host}), 400)
            assert "domain" in refused


async def test_sixty_links_are_two_pages_that_keep_the_filters(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        made = {f"/{(await shorten(app, ada, f'n/{i}', tags=['many'])).code}" for i in range(60)}
        await shorten(app, ada, "untagged")

        first = assert_page(await ada.http.get("/_/links", params={"tag": "many"}))
        assert len(picked(first)) == 50
        assert "First page" not in first
        later = next_page(first)
        assert later is not None
        assert later.startswith("/_/links?tag=many&cursor=")

        second = assert_page(await ada.http.get(later))
        assert len(picked(second)) == 10
        assert next_page(second) is None
        assert '<a href="/_/links?tag=many">First page</a>' in second
        seen = picked(first) + picked(second)
        assert len(seen) == len(set(seen)) == 60
        assert set(seen) == made


async def test_htmx_gets_the_results_alone_and_a_history_restore_the_page(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        link = await shorten(app, ada, "x", tags=["t"])
        htmx = {"HX-Request": "true"}

        full = assert_page(await ada.http.get("/_/links"))
        assert 'hx-get="/_/links"' in full
        assert 'hx-target="#results"' in full
        assert 'hx-push-url="true"' in full
        assert 'hx-trigger="input changed delay:300ms, search"' in full

        response = await ada.http.get("/_/links", params={"tag": "t"}, headers=htmx)
        partial = assert_page(response)
        assert "HX-Request" in response.headers["vary"]
        assert "<html" not in partial
        assert 'role="search"' not in partial
        assert picked(partial) == [f"/{link.code}"]

        restore = {**htmx, "HX-History-Restore-Request": "true"}
        page = assert_page(await ada.http.get("/_/links", headers=restore))
        assert "<html" in page
        assert 'role="search"' in page


@pytest.mark.parametrize(
    "query",
    [
        {"sort": "random"},
        {"q": "x" * (MAX_Q + 1)},
        {"q": "a\x00b"},
        {"tag": "t" * 200},
        {"tag": [f"t{i}" for i in range(21)]},
        {"cursor": "c" * 65},
    ],
    ids=["sort", "long-q", "control-q", "long-tag", "many-tags", "long-cursor"],
)
async def test_a_bad_query_is_a_400_page(
    app: FastAPI, db: Database, clock: FakeClock, query: Form
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        page = assert_page(await ada.http.get("/_/links", params=query), 400)
        assert 'class="error"' in page


async def test_a_cursor_the_list_never_gave_is_a_page_not_a_500(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        page = assert_page(await ada.http.get("/_/links", params={"cursor": "nonsense"}), 422)
        assert "cursor" in page


async def test_the_notice_is_kurzs_own_sentence_never_the_addresss_text(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        done = assert_page(await ada.http.get("/_/links?done=deleted&n=3"))
        assert "Deleted 3 link(s)." in done
        for query in ("done=<b>hi</b>&n=3", "done=deleted&n=x", "done=deleted&n=1e9"):
            page = assert_page(await ada.http.get(f"/_/links?{query}"))
            assert 'class="notice' not in page
            assert "hi</b>" not in page


async def test_bulk_delete_asks_first_then_deletes_and_goes_back_to_the_filters(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        one = await shorten(app, ada, "one", tags=["t"])
        two = await shorten(app, ada, "two", tags=["t"])
        kept = await shorten(app, ada, "kept", tags=["t"])
        form: Form = {
            "action": "delete",
            "link": [f"/{one.code}", f"/{two.code}"],
            "back": "/_/links?tag=t",
        }

        asked = assert_page(await ada.post_form("/_/links", form))
        assert one.short_url in asked
        assert two.short_url in asked
        assert '<input type="hidden" name="confirm" value="1">' in asked
        assert f'<input type="hidden" name="link" value="/{one.code}">' in asked
        assert await still_there(app, ada, one) is not None

        done = await ada.post_form("/_/links", {**form, "confirm": "1"})
        assert done.status_code == 303
        assert done.headers["location"] == "/_/links?tag=t&done=deleted&n=2"
        assert await still_there(app, ada, one) is None
        assert await still_there(app, ada, two) is None
        after = assert_page(await ada.http.get(done.headers["location"]))
        assert "Deleted 2 link(s)." in after
        assert picked(after) == [f"/{kept.code}"]


async def test_bulk_tags_are_added_and_removed_and_other_tags_kept(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        one = await shorten(app, ada, "one", tags=["old"])
        two = await shorten(app, ada, "two", tags=["team"])
        links = [f"/{one.code}", f"/{two.code}"]

        added = await ada.post_form(
            "/_/links", {"action": "tag", "tag": " team ", "link": links, "back": "/_/links"}
        )
        assert added.status_code == 303
        assert added.headers["location"] == "/_/links?done=tagged&n=2"
        now_one, now_two = await still_there(app, ada, one), await still_there(app, ada, two)
        assert now_one is not None
        assert now_two is not None
        assert now_one.tags == ["old", "team"]
        assert now_two.tags == ["team"]
        assert now_two.version == two.version  # it had the tag: not written

        removed = await ada.post_form("/_/links", {"action": "untag", "tag": "team", "link": links})
        assert removed.status_code == 303
        assert removed.headers["location"] == "/_/links?done=untagged&n=2"
        now_one, now_two = await still_there(app, ada, one), await still_there(app, ada, two)
        assert now_one is not None
        assert now_two is not None
        assert now_one.tags == ["old"]
        assert now_two.tags == []

        for bad in ("", "t" * 200):
            form: Form = {"action": "tag", "tag": bad, "link": links}
            assert_page(await ada.post_form("/_/links", form), 400)


async def test_bulk_without_the_csrf_token_is_refused_and_deletes_nothing(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        link = await shorten(app, ada, "one")
        form: Form = {"action": "delete", "confirm": "1", "link": [f"/{link.code}"]}
        refused = await ada.post_form("/_/links", form, csrf=False)
        assert "CSRF" in assert_page(refused, 403)
        assert await still_there(app, ada, link) is not None


async def test_bulk_over_another_users_link_leaves_it_and_says_not_found(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with (
        browser_of(app, db, clock, "ada@example.com") as ada,
        browser_of(app, db, clock, "bob@example.com") as bob,
    ):
        hers = await shorten(app, ada, "hers")
        his = await shorten(app, bob, "his")
        both = [f"/{hers.code}", f"/{his.code}"]

        tagged = assert_page(
            await bob.post_form("/_/links", {"action": "tag", "tag": "mine", "link": both})
        )
        assert "Added the tag to 1 link(s)" in tagged
        assert f'{hers.code}</span>: <span class="error">Not found' in tagged

        asked = assert_page(await bob.post_form("/_/links", {"action": "delete", "link": both}))
        assert hers.url not in asked
        assert "Not found" in asked
        deleted = assert_page(
            await bob.post_form("/_/links", {"action": "delete", "confirm": "1", "link": both})
        )
        assert "Deleted 1 link(s)" in deleted
        assert "Not found" in deleted

        left = await still_there(app, ada, hers)
        assert left is not None
        assert left.tags == []
        assert await still_there(app, bob, his) is None


async def test_a_link_gone_meanwhile_is_reported_and_the_rest_done(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        gone = await shorten(app, ada, "gone")
        left = await shorten(app, ada, "left")
        form: Form = {"action": "delete", "confirm": "1", "link": [f"/{gone.code}"]}
        assert (await ada.post_form("/_/links", form)).status_code == 303

        form["link"] = [f"/{gone.code}", f"/{left.code}", "nowhere.example/abcdefg", "/a b"]
        page = assert_page(await ada.post_form("/_/links", form))
        assert "Deleted 1 link(s)" in page
        assert page.count("Not found") == 3
        assert await still_there(app, ada, left) is None


@pytest.mark.parametrize(
    "form",
    [
        {"action": "publish", "link": ["/abcdefg"]},
        {"action": "delete", "link": ["no-slash"]},
        {"action": "delete", "link": [f"/code{i}" for i in range(101)]},
    ],
    ids=["action", "link", "too-many"],
)
async def test_a_bad_bulk_form_is_a_400_page(
    app: FastAPI, db: Database, clock: FakeClock, form: Form
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        link = await shorten(app, ada, "one")
        assert_page(await ada.post_form("/_/links", form), 400)
        assert await still_there(app, ada, link) is not None


@pytest.mark.parametrize(
    "back", ["https://evil.example/_/links", "//evil.example/_/links", "/_/links/../x", "/_/keys"]
)
async def test_bulk_goes_back_only_to_the_list(
    app: FastAPI, db: Database, clock: FakeClock, back: str
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        done = await ada.post_form("/_/links", {"action": "delete", "back": back})
        assert done.status_code == 303
        assert done.headers["location"] == "/_/links?done=none&n=0"
        page = assert_page(await ada.http.get(done.headers["location"]))
        assert '<p class="notice error" role="status">Select at least one link first.' in page


async def test_a_search_finds_by_code_url_title_and_tag(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        by_url = await shorten(app, ada, "needle-in-url")
        by_title = await shorten(app, ada, "b", title="A needle in the title")
        by_tag = await shorten(app, ada, "c", tags=["needle"])
        await shorten(app, ada, "haystack")

        page = assert_page(await ada.http.get("/_/links", params={"q": "needle"}))
        assert set(picked(page)) == {f"/{by_url.code}", f"/{by_title.code}", f"/{by_tag.code}"}
        none = assert_page(await ada.http.get("/_/links", params={"q": "absent"}))
        assert "No link matches." in none


async def test_several_tags_narrow_to_links_with_every_one(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        both = await shorten(app, ada, "both", tags=["a", "b"])
        await shorten(app, ada, "a", tags=["a"])
        await shorten(app, ada, "b", tags=["b"])

        page = assert_page(await ada.http.get("/_/links?tag=a&tag=b"))
        assert picked(page) == [f"/{both.code}"]


async def test_the_sorts_order_the_list_and_the_pages(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        made = [await shorten(app, ada, f"n/{i}") for i in range(55)]
        codes = [f"/{link.code}" for link in made]

        oldest = assert_page(await ada.http.get("/_/links", params={"sort": "oldest"}))
        later = next_page(oldest)
        assert later is not None
        assert "sort=oldest" in later
        rest = assert_page(await ada.http.get(later))
        assert picked(oldest) + picked(rest) == codes

        by_code = assert_page(await ada.http.get("/_/links", params={"sort": "code"}))
        later = next_page(by_code)
        assert later is not None
        rest = assert_page(await ada.http.get(later))
        assert picked(by_code) + picked(rest) == sorted(codes, key=lambda c: c[1:])
