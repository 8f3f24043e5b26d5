"""The link form read into the API's models, its errors placed, and an edit compared
with the link as saved."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from starlette.datastructures import FormData

from kurz.errors import Problem
from kurz.links.models import LinkCreate, LinkRead, LinkUpdate
from kurz.web.forms import Posted
from kurz.web.link_changes import changes, compared
from kurz.web.link_form import (
    checked,
    create_body,
    filled,
    typed,
    update_body,
    where_in_rules,
    with_errors,
)


def form_of(*pairs: tuple[str, str]) -> Posted:
    return Posted(FormData(list(pairs)))


def saved(**more: object) -> LinkRead:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    fields: dict[str, object] = {
        "code": "abc1234",
        "domain": "kurz.test",
        "short_url": "https://kurz.test/abc1234",
        "url": "https://example.com/",
        "alias": False,
        "created_at": now,
        "updated_at": now,
        "expires_at": None,
        "max_visits": None,
        "redirect_status": 302,
        "forward_query": False,
        "tags": [],
        "version": 1,
    }
    return LinkRead.model_validate({**fields, **more})


def test_empty_fields_are_left_out_of_a_create() -> None:
    form = typed(
        form_of(
            ("url", " https://example.com/ "),
            ("alias", ""),
            ("tags", "a, , b"),
            ("expires_at", "2030-01-31T09:00"),
            ("variant_url", ""),
            ("variant_weight", ""),
            ("redirect_status", "302"),
        )
    )
    body, early = create_body(form)
    assert early == {}
    assert body == {
        "url": "https://example.com/",
        "expires_at": "2030-01-31T09:00:00Z",
        "tags": ["a", "b"],
        "redirect_status": 302,
        "forward_query": False,
    }
    assert checked(LinkCreate, (body, early)).expires_at == datetime(2030, 1, 31, 9, tzinfo=UTC)


def test_an_edit_clears_what_is_left_empty() -> None:
    body, _ = update_body(
        typed(form_of(("url", "https://example.com/"), ("remove_password", "on")))
    )
    assert body["max_visits"] is None
    assert body["rules"] is None
    assert body["variants"] is None
    assert body["tags"] == []
    assert body["password"] is None
    assert "alias" not in body


@pytest.mark.parametrize(
    ("path", "said"),
    [
        ("rules.1.conditions.0.country.in.2", "Rule 2, condition 1, in value 3"),
        ("rules.3.conditions.0.device.os", "Rule 4, condition 1, os"),
        ("rules.2.url", "Rule 3, url"),
        ("rules.0.conditions.1", "Rule 1, condition 2"),
    ],
)
def test_a_place_in_the_rules_is_said_in_words(path: str, said: str) -> None:
    assert where_in_rules(path) == said


def test_errors_go_beside_the_fields_and_rows_they_name() -> None:
    form = typed(
        form_of(
            ("url", "https://example.com/"),
            ("variant_url", "https://example.com/a"),
            ("variant_weight", "many"),
            ("variant_url", "https://example.com/b"),
            ("variant_weight", "1"),
            ("fallback_expired", "nope"),
            ("rules", "{"),
        )
    )
    with pytest.raises(Problem) as refused:
        checked(LinkCreate, create_body(form))
    shown = with_errors(form, refused.value)
    assert set(shown.errors) == {"variant_weight_0", "fallback_expired", "rules"}
    assert shown.others == []
    assert shown.opened("variants")
    assert shown.opened("rules")
    assert not shown.opened("preview")


def test_an_edit_sends_only_what_differs_from_the_saved_link() -> None:
    link = saved(tags=["b", "a"], expires_at=datetime(2020, 1, 1, tzinfo=UTC))
    form = filled(link)
    form.values["og_title"] = "New"
    form.values["tags"] = "a, b"
    edit = checked(LinkUpdate, update_body(form))
    sent = changes(edit, link)
    assert sent.model_fields_set == {"og_title"}
    rows = {row.name: row for row in compared(edit, link)}
    assert rows["og_title"].differs
    assert (rows["og_title"].mine, rows["og_title"].theirs) == ("New", "—")
    assert not rows["expires_at"].differs
    assert not rows["tags"].differs
