"""kurz.links.conditions: targeting rules are validated on write, each error naming
the rule, the condition and the field; what is stored reads back the same."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from kurz.links.conditions import (
    COUNTRIES,
    MAX_RULES,
    Rules,
    language_tag,
    loaded,
    stored,
)

RULES: TypeAdapter[Any] = TypeAdapter(Rules)


def rule(*conditions: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"url": "https://example.com/r", "conditions": list(conditions), **more}


def errors(rules: list[dict[str, Any]]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        RULES.validate_python(rules)
    return [(".".join(map(str, e["loc"])), e["msg"]) for e in caught.value.errors()]


def test_every_kind_of_condition_is_taken_and_reads_back_as_written() -> None:
    written = [
        rule(
            {"type": "device", "in": ["ios", "android"]},
            {"type": "os", "in": ["Windows"]},
            {"type": "browser", "in": ["Firefox"]},
            {"type": "language", "in": ["de", "en-GB"]},
            {"type": "country", "in": ["DE", "AT"]},
            {"type": "city", "in": ["Berlin"]},
            {"type": "query", "param": "ref", "equals": "mail"},
            {"type": "query", "param": "beta"},
            {"type": "time", "from": "2030-01-01T00:00:00Z", "until": "2030-02-01T00:00:00Z"},
            match="any",
        ),
        rule({"type": "time", "until": "2030-01-01T00:00:00Z"}),
    ]
    text = stored(RULES.validate_python(written))
    assert text is not None
    again = [r.model_dump(mode="json", by_alias=True, exclude_none=True) for r in loaded(text)]
    assert again[0] == written[0]
    assert again[1] == written[1] | {"match": "all"}


def test_no_rules_are_stored_as_none() -> None:
    assert stored([]) is None
    assert loaded(None) == []


def test_values_are_put_in_their_conventional_case() -> None:
    [read] = RULES.validate_python(
        [
            rule(
                {"type": "language", "in": ["EN-gb", "zh-hant-tw"]},
                {"type": "country", "in": ["de"]},
            )
        ]
    )
    language, country = read.conditions
    assert language.in_ == ["en-GB", "zh-Hant-TW"]
    assert country.in_ == ["DE"]


@pytest.mark.parametrize(
    ("condition", "field", "message"),
    [
        ({"type": "country", "in": ["QQ"]}, "country.in.0", "'QQ' is not an ISO 3166-1"),
        ({"type": "country", "in": ["DEU"]}, "country.in.0", "at most 2 characters"),
        ({"type": "language", "in": ["english!"]}, "language.in.0", "is not a language tag"),
        ({"type": "language", "in": ["*"]}, "language.in.0", "is not a language tag"),
        ({"type": "device", "in": ["phone"]}, "device.in.0", "Input should be 'ios'"),
        ({"type": "device", "in": []}, "device.in", "at least 1 item"),
        ({"type": "device", "in": ["ios"], "not": True}, "device.not", "Extra inputs"),
        ({"type": "planet", "in": ["mars"]}, "", "does not match any of the expected tags"),
        ({"type": "query"}, "query.param", "Field required"),
        ({"type": "time"}, "time", "needs `from`, `until` or both"),
        (
            {"type": "time", "from": "2030-01-02T00:00:00Z", "until": "2030-01-01T00:00:00Z"},
            "time",
            "`from` must be before `until`",
        ),
        ({"type": "time", "from": "2030-01-02T00:00:00"}, "time.from", "timezone"),
        ({"type": "city", "in": ["  "]}, "city.in.0", "must not be empty"),
    ],
)
def test_a_bad_condition_is_refused_naming_its_rule_and_field(
    condition: dict[str, Any], field: str, message: str
) -> None:
    good = rule({"type": "device", "in": ["ios"]})
    [(where, said)] = errors([good, rule({"type": "device", "in": ["ios"]}, condition)])
    assert where == f"1.conditions.1.{field}".rstrip(".")
    assert message in said


def test_a_rule_needs_a_url_and_a_condition_and_knows_its_fields() -> None:
    assert (
        errors([{"url": "ftp://x", "conditions": [{"type": "device", "in": ["ios"]}]}])[0][0]
        == "0.url"
    )
    assert errors([rule()]) == [
        ("0.conditions", "List should have at least 1 item after validation, not 0")
    ]
    assert errors([rule({"type": "device", "in": ["ios"]}, match="some")])[0][0] == "0.match"
    assert errors([rule({"type": "device", "in": ["ios"]}, weight=1)])[0][0] == "0.weight"


def test_at_most_32_rules() -> None:
    many = [rule({"type": "device", "in": ["ios"]})] * (MAX_RULES + 1)
    assert errors(many)[0][0] == ""
    assert len(RULES.validate_python(many[:MAX_RULES])) == MAX_RULES


def test_every_country_code_is_two_capital_letters() -> None:
    assert len(COUNTRIES) == 250
    assert all(len(code) == 2 and code.isalpha() and code.isupper() for code in COUNTRIES)


@given(st.text(max_size=30))
def test_a_language_tag_is_either_taken_in_its_canonical_form_or_refused(text: str) -> None:
    try:
        tag = language_tag(text)
    except ValueError:
        return
    assert tag.lower() == text.lower()
    assert language_tag(tag) == tag
