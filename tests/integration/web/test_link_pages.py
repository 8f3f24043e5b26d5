"""One link's pages: create with every option, its page, edit under If-Match with the
conflict view, delete after a confirmation. Plain form posts (no JavaScript), errors
beside the fields the API names, CSRF, and another member's link a 404 page. On SQLite
and PostgreSQL."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from kurz.db import Database
from tests.integration.auth.people import client, new_key
from tests.integration.web.people import Browser, assert_page, browser_of, error_beside
from tests.support import FakeClock

NEW = "/_/new"
Form = dict[str, str | list[str]]


def hidden(page: str) -> dict[str, list[str]]:
    """The hidden fields of the page's forms, by name (a repeated name: each value)."""
    found: dict[str, list[str]] = {}
    for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page):
        found.setdefault(html.unescape(name), []).append(html.unescape(value))
    return found


def first_values(page: str) -> Form:
    """The hidden fields of the page's forms, each its first value."""
    return {name: values[0] for name, values in hidden(page).items()}


def value_of(page: str, field: str) -> str:
    """The value an input of the page shows."""
    found = re.search(rf'<input id="{re.escape(field)}" [^>]*?value="([^"]*)"', page)
    assert found is not None, page
    return html.unescape(found.group(1))


async def create(who: Browser, **fields: str | list[str]) -> httpx.Response:
    """The create form, opened then posted with `fields` (its one-time key included)."""
    form = assert_page(await who.http.get(NEW))
    key = hidden(form)["idempotency_key"][0]
    return await who.post_form(NEW, {"idempotency_key": key, **fields})


async def made(who: Browser, **fields: str | list[str]) -> str:
    """A new link's page address."""
    done = await create(who, **fields)
    assert done.status_code == 303, done.text
    location = done.headers["location"]
    assert location.startswith("/_/links/")
    return location


def code_of(location: str) -> str:
    return location.removeprefix("/_/links/").split("?")[0]


async def api_link(who: Browser, code: str, domain: str = "") -> dict[str, Any]:
    query = f"?domain={domain}" if domain else ""
    found = await who.http.get(f"/api/v1/links/{code}{query}")
    assert found.status_code == 200, found.text
    link: dict[str, Any] = found.json()
    return link


async def test_a_link_made_with_a_tag_and_a_cap_shows_on_its_page(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        form = assert_page(await ada.http.get(NEW))
        assert f'name="csrf_token" value="{ada.csrf}"' in form
        assert "<details>\n<summary>Schedule and limits</summary>" in form
        assert len(re.findall(r'name="variant_url"', form)) == 3
        location = await made(
            ada, url="https://example.com/spring", tags="spring, mail", max_visits="5"
        )
        assert location.endswith("?created=1")
        code = code_of(location)
        page = assert_page(await ada.http.get(location))
        short = f"https://kurz.test/{code}"
        assert f'<p class="short" id="short-url">{short}</p>' in page
        assert f'data-copy="{short}"' in page
        assert "The link is made." in page
        assert ">spring</a>" in page
        assert ">mail</a>" in page
        assert "0 of 5 used" in page
        assert f'<img src="/api/v1/links/{code}/qr?format=svg&amp;size=' in page
        assert f'alt="QR code for {short}"' in page
        assert re.search(rf'href="/api/v1/links/{code}/qr\?format=png[^"]*" download=', page)
        assert f'href="/_/links/{code}/edit"' in page
        assert f'href="/_/links/{code}/stats"' in page
        link = await api_link(ada, code)
        assert (link["tags"], link["max_visits"]) == (["mail", "spring"], 5)
        # A visit uses one of the five.
        async with client(app) as anon:
            assert (await anon.get(f"/{code}")).status_code == 302
        assert "1 of 5 used" in assert_page(await ada.http.get(f"/_/links/{code}"))
        assert "The link is made." not in assert_page(await ada.http.get(f"/_/links/{code}"))


async def test_every_option_the_api_has_is_made_from_the_form(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    rules = [{"url": "https://example.com/de", "conditions": [{"type": "country", "in": ["DE"]}]}]
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        location = await made(
            ada,
            url="https://example.com/",
            alias="sale-2030",
            valid_from="2030-01-01T09:00",
            expires_at="2031-01-01T00:00",
            max_visits="100",
            redirect_status="307",
            forward_query="on",
            password="open sesame",
            rules=json.dumps(rules),
            variant_url=["https://example.com/a", "https://example.com/b", ""],
            variant_weight=["70", "30", ""],
            variant_choice="sticky",
            fallback_not_yet="https://example.com/soon",
            fallback_expired="https://example.com/over",
            fallback_used_up="https://example.com/gone",
            og_title="Spring sale",
            og_description="Everything half off",
            og_image="https://example.com/card.png",
        )
        assert code_of(location) == "sale-2030"
        link = await api_link(ada, "sale-2030")
        assert link["valid_from"] == "2030-01-01T09:00:00Z"
        assert link["expires_at"] == "2031-01-01T00:00:00Z"
        assert (link["redirect_status"], link["forward_query"]) == (307, True)
        assert link["password_protected"] is True
        assert link["rules"] == [{**rules[0], "match": "all"}]
        assert link["variants"] == [
            {"url": "https://example.com/a", "weight": 70},
            {"url": "https://example.com/b", "weight": 30},
        ]
        assert link["variant_choice"] == "sticky"
        assert link["fallbacks"] == {
            "not_yet": "https://example.com/soon",
            "expired": "https://example.com/over",
            "used_up": "https://example.com/gone",
        }
        assert link["og_title"] == "Spring sale"
        page = assert_page(await ada.http.get(location))
        # The rules and the variants are shown, as words and shares.
        assert "country is DE" in page
        assert "https://example.com/de" in page
        assert "70%" in page
        assert "30%" in page
        assert "sticky" in page
        assert "Yes: visitors must type it" in page
        assert "2030-01-01 09:00 UTC" in page
        # The edit form is filled from it, its sections open, and never with the password.
        form = assert_page(await ada.http.get(f"/_/links/{link['code']}/edit"))
        assert hidden(form)["version"] == ["1"]
        assert value_of(form, "valid_from") == "2030-01-01T09:00"
        assert value_of(form, "variant_weight_1") == "30"
        assert "<details open>\n<summary>Targeting rules</summary>" in form
        assert "open sesame" not in form
        assert 'id="remove_password"' in form


@pytest.mark.parametrize(
    ("fields", "field", "said"),
    [
        ({"url": "not a url"}, "url", ""),
        ({"url": "https://example.com/", "rules": '[{"url": '}, "rules", "not JSON"),
        (
            {
                "url": "https://example.com/",
                "rules": json.dumps(
                    [
                        {
                            "url": "https://example.com/a",
                            "conditions": [{"type": "device", "in": ["ios"]}],
                        },
                        {
                            "url": "https://example.com/b",
                            "conditions": [{"type": "country", "in": ["DE", "AT", "XY"]}],
                        },
                    ]
                ),
            },
            "rules",
            "Rule 2, condition 1, in value 3: 'XY' is not an ISO 3166-1 alpha-2 country code",
        ),
        (
            {
                "url": "https://example.com/",
                "variant_url": ["https://example.com/a", "https://example.com/b"],
                "variant_weight": ["lots", "30"],
            },
            "variant_weight_0",
            "integer",
        ),
        (
            {
                "url": "https://example.com/",
                "variant_url": ["https://example.com/a"],
                "variant_weight": ["1"],
            },
            "variants",
            "at least 2",
        ),
        ({"url": "https://example.com/", "expires_at": "next week"}, "expires_at", "UTC"),
        ({"url": "https://example.com/", "expires_at": "2000-01-01T00:00"}, "expires_at", "future"),
        ({"url": "https://example.com/", "domain": "nowhere.example"}, "domain", "no domain"),
        ({"url": "https://example.com/", "fallback_expired": "ftp://x"}, "fallback_expired", ""),
    ],
)
async def test_each_error_is_shown_beside_its_field(
    app: FastAPI,
    db: Database,
    clock: FakeClock,
    fields: dict[str, str | list[str]],
    field: str,
    said: str,
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        page = assert_page(await create(ada, tags="kept, as typed", **fields), 422)
        assert said in html.unescape(error_beside(page, field))
        assert f'aria-describedby="{field}-error' in page
        # The summary at the top links to the field.
        summary = page.split('id="form-errors"', 1)[1].split("</div>", 1)[0]
        assert 'role="alert"' in page.split('id="form-errors"', 1)[0][-40:]
        assert f'<a href="#{field}">' in summary
        # What was typed stays.
        assert value_of(page, "tags") == "kept, as typed"
        # Nothing was made.
        listed = await ada.http.get("/api/v1/links")
        assert listed.json()["items"] == []


async def test_a_rules_error_opens_its_section_and_keeps_the_json(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    rules = '[{"url": "https://example.com/b", "conditions": [{"type": "country", "in": ["XY"]}]}]'
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        page = assert_page(await create(ada, url="https://example.com/", rules=rules), 422)
        assert "<details open>\n<summary>Targeting rules</summary>" in page
        typed = re.search(r'<textarea id="rules"[^>]*>([^<]*)</textarea>', page)
        assert typed is not None
        assert html.unescape(typed.group(1)) == rules
        assert "<details>\n<summary>A/B variants</summary>" in page


async def test_a_taken_alias_is_a_409_beside_the_alias(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        await made(ada, url="https://example.com/1", alias="spring")
        page = assert_page(await create(ada, url="https://example.com/2", alias="spring"), 409)
        assert "'spring' is in use" in html.unescape(error_beside(page, "alias"))
        assert value_of(page, "url") == "https://example.com/2"
        assert value_of(page, "alias") == "spring"
        # A fresh one-time key: the corrected form is a new request, not the refused one.
        fixed = await ada.post_form(
            NEW,
            {
                "url": "https://example.com/2",
                "alias": "summer",
                "idempotency_key": hidden(page)["idempotency_key"][0],
            },
        )
        assert fixed.status_code == 303, fixed.text


async def test_the_password_is_never_sent_back(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        page = assert_page(await create(ada, url="nope", password="hunter2222"), 422)
        assert "hunter2222" not in page
        assert "Type the password again" in page
        assert "<details open>\n<summary>Password</summary>" in page


async def test_a_form_sent_twice_makes_one_link(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        form = assert_page(await ada.http.get(NEW))
        sent: Form = {
            "url": "https://example.com/once",
            "idempotency_key": hidden(form)["idempotency_key"][0],
        }
        first = await ada.post_form(NEW, sent)
        second = await ada.post_form(NEW, sent)
        assert first.status_code == second.status_code == 303
        assert first.headers["location"] == second.headers["location"]
        assert len((await ada.http.get("/api/v1/links")).json()["items"]) == 1
        # Each form has its own key: a second form makes a second link.
        again = assert_page(await ada.http.get(NEW))
        assert hidden(again)["idempotency_key"] != sent["idempotency_key"]
        await made(ada, url="https://example.com/once")
        assert len((await ada.http.get("/api/v1/links")).json()["items"]) == 2


async def test_an_edit_is_saved_with_its_version(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        code = code_of(await made(ada, url="https://example.com/old", tags="a"))
        edit = f"/_/links/{code}/edit"
        form = assert_page(await ada.http.get(edit))
        assert value_of(form, "url") == "https://example.com/old"
        assert value_of(form, "tags") == "a"
        fields = {**first_values(form), "url": "https://example.com/new"}
        fields |= {"tags": "a, b", "redirect_status": "301", "max_visits": "9"}
        done = await ada.post_form(edit, fields)
        assert done.status_code == 303, done.text
        assert done.headers["location"] == f"/_/links/{code}?saved=1"
        page = assert_page(await ada.http.get(done.headers["location"]))
        assert "Your changes are saved." in page
        assert "https://example.com/new" in page
        link = await api_link(ada, code)
        assert (link["version"], link["tags"], link["max_visits"]) == (2, ["a", "b"], 9)
        assert link["redirect_status"] == 301
        # An empty field clears what it held.
        fields = {"version": "2", "url": "https://example.com/new", "tags": ""}
        assert (await ada.post_form(edit, fields)).status_code == 303
        link = await api_link(ada, code)
        assert (link["tags"], link["max_visits"], link["redirect_status"]) == ([], None, 302)


async def test_an_edit_sends_only_what_it_changes(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        code = code_of(await made(ada, url="https://example.com/", expires_at="2026-01-01T06:00"))
        clock.advance(86_400)
        # The link has expired: its past expiry, unchanged, is not refused.
        form = assert_page(await ada.http.get(f"/_/links/{code}/edit"))
        fields = first_values(form)
        fields |= {"url": "https://example.com/", "expires_at": value_of(form, "expires_at")}
        fields["og_title"] = "Over"
        done = await ada.post_form(f"/_/links/{code}/edit", fields)
        assert done.status_code == 303, done.text
        assert (await api_link(ada, code))["og_title"] == "Over"


async def test_an_edit_error_is_shown_beside_its_field(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        code = code_of(await made(ada, url="https://example.com/"))
        fields: Form = {"version": "1", "url": "https://example.com/", "max_visits": "0"}
        page = assert_page(await ada.post_form(f"/_/links/{code}/edit", fields), 422)
        assert "greater than or equal to 1" in error_beside(page, "max_visits")
        assert hidden(page)["version"] == ["1"]
        assert (await api_link(ada, code))["version"] == 1


async def test_two_edits_of_one_version_show_both_and_change_nothing_until_kept(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with browser_of(app, db, clock, "ada@example.com", role="admin") as ada:
        code = code_of(await made(ada, url="https://example.com/first", tags="x"))
        edit = f"/_/links/{code}/edit"
        form = assert_page(await ada.http.get(edit))
        based = first_values(form)
        theirs = {**based, "url": "https://example.com/theirs", "tags": "x"}
        assert (await ada.post_form(edit, theirs)).status_code == 303
        mine: Form = {**based, "url": "https://example.com/mine", "tags": "x, y"}
        mine |= {"password": "my secret", "variant_url": [""], "variant_weight": [""]}
        page = assert_page(await ada.post_form(edit, mine), 412)
        assert "Your version" in page
        assert "Saved now (changed by someone else)" in page
        rows = re.findall(r'<tr( class="differs")?><th scope="row">([^<]+)', page)
        differing = {label.strip() for marked, label in rows if marked}
        assert differing == {"Target URL", "Tags", "Password"}
        assert page.count('<span class="changed">changed</span>') == 3
        assert "https://example.com/mine" in page
        assert "https://example.com/theirs" in page
        assert "my secret" not in page
        assert f'href="/_/links/{code}">Take theirs</a>' in page
        # Nothing of mine is saved yet.
        link = await api_link(ada, code)
        assert (link["url"], link["version"], link["password_protected"]) == (
            "https://example.com/theirs",
            2,
            False,
        )
        # Keep mine: my values again, on the version saved now.
        kept: Form = {k: v if len(v) > 1 else v[0] for k, v in hidden(page).items()}
        assert kept["version"] == "2"
        kept["password"] = "my secret"
        done = await ada.post_form(edit, kept)
        assert done.status_code == 303, done.text
        link = await api_link(ada, code)
        assert (link["url"], link["tags"], link["version"]) == (
            "https://example.com/mine",
            ["x", "y"],
            3,
        )
        assert link["password_protected"] is True


async def test_an_edit_sent_twice_is_saved_once_without_a_conflict(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        code = code_of(await made(ada, url="https://example.com/"))
        fields: Form = {"version": "1", "url": "https://example.com/twice"}
        first = await ada.post_form(f"/_/links/{code}/edit", fields)
        second = await ada.post_form(f"/_/links/{code}/edit", fields)
        assert first.status_code == second.status_code == 303
        assert second.headers["location"] == f"/_/links/{code}?saved=1"
        assert (await api_link(ada, code))["version"] == 2


async def test_delete_asks_first_then_deletes(app: FastAPI, db: Database, clock: FakeClock) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        code = code_of(await made(ada, url="https://example.com/doomed"))
        page = assert_page(await ada.http.get(f"/_/links/{code}/delete"))
        assert "This cannot be undone" in page
        assert '<button type="submit" class="danger">Delete</button>' in page
        assert f'<a href="/_/links/{code}">Cancel</a>' in page
        assert "https://example.com/doomed" in page
        fields = first_values(page)
        # Changed since the page was shown: asked again, not deleted.
        await ada.post_form(
            f"/_/links/{code}/edit", {"version": "1", "url": "https://example.com/changed"}
        )
        again = assert_page(await ada.post_form(f"/_/links/{code}/delete", fields), 412)
        assert "changed since you opened this page" in again
        assert "https://example.com/changed" in again
        fields = first_values(again)
        done = await ada.post_form(f"/_/links/{code}/delete", fields)
        assert done.status_code == 303
        assert done.headers["location"] == "/_/links?done=deleted&n=1"
        assert_page(await ada.http.get(f"/_/links/{code}"), 404)
        async with client(app) as anon:
            assert (await anon.get(f"/{code}")).status_code in {404, 410}


async def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        code = code_of(await made(ada, url="https://example.com/kept"))
        refused = await ada.post_form(NEW, {"url": "https://example.com/x"}, csrf=False)
        assert "CSRF" in assert_page(refused, 403)
        edit: Form = {"version": "1", "url": "https://example.com/changed"}
        assert_page(await ada.post_form(f"/_/links/{code}/edit", edit, csrf=False), 403)
        deleted = await ada.post_form(f"/_/links/{code}/delete", {"version": "1"}, csrf=False)
        assert_page(deleted, 403)
        items = (await ada.http.get("/api/v1/links")).json()["items"]
        assert [(i["url"], i["version"]) for i in items] == [("https://example.com/kept", 1)]


async def test_another_members_link_is_a_404_page(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with (
        browser_of(app, db, clock, "ada@example.com") as ada,
        browser_of(app, db, clock, "bob@example.com") as bob,
    ):
        code = code_of(await made(ada, url="https://example.com/ada"))
        for path in ("", "/edit", "/delete"):
            page = assert_page(await bob.http.get(f"/_/links/{code}{path}"), 404)
            assert "https://example.com/ada" not in page
        edit: Form = {"version": "1", "url": "https://example.com/bob"}
        assert_page(await bob.post_form(f"/_/links/{code}/edit", edit), 404)
        assert_page(await bob.post_form(f"/_/links/{code}/delete", {"version": "1"}), 404)
        link = await api_link(ada, code)
        assert (link["url"], link["version"]) == ("https://example.com/ada", 1)


async def test_a_link_on_another_domain_opens_with_its_domain(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with browser_of(app, db, clock, "root@example.com", role="admin") as root:
        async with client(app, await new_key(db, clock, root.user_id, admin=True)) as api:
            added = await api.post("/api/v1/domains", json={"host": "go.example"})
            assert added.status_code == 201, added.text
        form = assert_page(await root.http.get(NEW))
        assert '<option value="kurz.test" selected>kurz.test (default)</option>' in form
        assert '<option value="go.example">go.example</option>' in form
        location = await made(root, url="https://example.com/", alias="sale", domain="go.example")
        assert location == "/_/links/sale?domain=go.example&created=1"
        page = assert_page(await root.http.get(location))
        assert "https://go.example/sale" in page
        assert "/api/v1/links/sale/qr?format=svg&amp;size=240&amp;domain=go.example" in page
        assert 'href="/_/links/sale/edit?domain=go.example"' in page
        # The same code on the default domain is another link, which is not there.
        assert_page(await root.http.get("/_/links/sale"), 404)
        form = assert_page(await root.http.get("/_/links/sale/edit?domain=go.example"))
        fields = {**first_values(form), "url": "https://example.com/2"}
        done = await root.post_form("/_/links/sale/edit?domain=go.example", fields)
        assert done.headers["location"] == "/_/links/sale?domain=go.example&saved=1"


@pytest.mark.parametrize(
    "path",
    ["/_/links/abcdefg?domain=" + "x" * 400, "/_/links/nope.nope", "/_/links/abcdefg/edit"],
)
async def test_a_bad_address_is_a_page_never_a_500(
    app: FastAPI, db: Database, clock: FakeClock, path: str
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        response = await ada.http.get(path)
        assert response.status_code in {400, 404}
        assert_page(response, response.status_code)


async def test_a_form_without_its_version_is_refused_with_a_page(
    app: FastAPI, db: Database, clock: FakeClock
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        code = code_of(await made(ada, url="https://example.com/"))
        edit: Form = {"url": "https://example.com/x", "version": "latest"}
        page = assert_page(await ada.post_form(f"/_/links/{code}/edit", edit), 400)
        assert "version" in page
        assert (await api_link(ada, code))["version"] == 1


@pytest.mark.parametrize("alias", ["new", "bulk", "edit"])
async def test_an_alias_that_spells_a_page_name_keeps_its_page(
    app: FastAPI, db: Database, clock: FakeClock, alias: str
) -> None:
    async with browser_of(app, db, clock, "ada@example.com") as ada:
        location = await made(ada, url="https://example.com/a", alias=alias)
        assert location == f"/_/links/{alias}?created=1"
        page = assert_page(await ada.http.get(f"/_/links/{alias}"))
        assert f"https://kurz.test/{alias}" in page
        assert_page(await ada.http.get(f"/_/links/{alias}/edit"))
