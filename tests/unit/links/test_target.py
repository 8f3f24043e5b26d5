"""Target is declared once: its columns and its L2 codec follow, and agree with it."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.visitors import iterate

from kurz.db.tables import links
from kurz.links.rules import RULES
from kurz.links.target import COLUMNS, DECLARED, Target, TargetCodec
from kurz.links.variants import stored

# A value, other than None, for each type a declared field may have. A field of another
# type fails here first, so that the round trip below is never left out for it.
_SAMPLES: dict[str, Any] = {
    "int": 7,
    "int | None": 3,
    "str": "https://example.com/p?q=1",
    "str | None": "A title",
    "bool": True,
    "float | None": 1_767_225_600.25,
}
# Fields whose value has a form of its own (JSON as kurz.links writes it).
_BY_NAME: dict[str, Any] = {
    # Targeting rules, as links.rules stores them.
    "targeting": '[{"url":"https://example.com/r","conditions":[{"type":"device","in":["ios"]}]}]',
    "variants_json": stored([("https://a.example/", 1), ("https://b.example/", 3)], "sticky"),
    "fallbacks": '{"expired": "https://example.com/e"}',
}


def every_field_set() -> Target:
    values = {}
    for declared in DECLARED:
        if declared.name in _BY_NAME:
            values[declared.name] = _BY_NAME[declared.name]
            continue
        assert declared.type in _SAMPLES, f"no sample for {declared.name}: {declared.type}"
        values[declared.name] = _SAMPLES[declared.type]
    return Target(**values)


def test_columns_name_every_declared_field_from_the_links_table() -> None:
    assert [column.name for column in COLUMNS] == [declared.name for declared in DECLARED]
    for column, declared in zip(COLUMNS, DECLARED, strict=True):
        assert column.element is declared.metadata["column"]
        # A column, or an expression over the links table's columns (`protected`).
        found = [c for c in iterate(column.element) if isinstance(c, sa.Column)]
        assert found
        assert {c.table for c in found} == {links}


def test_moments_are_nullable_date_times() -> None:
    moments = [d.name for d in DECLARED if d.metadata["moment"]]
    assert moments == ["starts_at", "expires_at"]
    for declared in DECLARED:
        if declared.metadata["moment"]:
            assert declared.metadata["column"].nullable


def test_the_codec_round_trips_a_target_with_every_field_set() -> None:
    codec = TargetCodec()
    target = every_field_set()
    decoded = codec.decode(codec.encode(target))
    assert decoded == target
    assert decoded is not None
    # What is worked out from the fields follows them too.
    assert (decoded.headers, decoded.rules, decoded.variants, decoded.plain) == (
        target.headers,
        target.rules,
        target.variants,
        target.plain,
    )
    assert decoded.variants is not None
    # Every field set: the link carries every rule.
    assert decoded.rules == RULES


def test_an_entry_of_another_shape_is_a_miss() -> None:
    codec = TargetCodec()
    payload = codec.encode(every_field_set())
    other = payload.replace(str(TargetCodec.SHAPE).encode(), b"1", 1)
    assert codec.decode(other) is None


def test_each_url_a_visit_may_go_to_has_its_headers_and_the_forwarded_query() -> None:
    rules = (
        '[{"url":"https://apps.example/i?x=1","conditions":[{"type":"device","in":["ios"]}]},'
        '{"url":"https://e.example/b#top","conditions":[{"type":"device","in":["android"]}]}]'
    )
    target = Target(
        link_id=1,
        version=1,
        status=301,
        url="https://e.example/",
        forward_query=True,
        starts_at=None,
        expires_at=None,
        max_visits=None,
        targeting=rules,
    )
    assert target.urls == (
        "https://e.example/",
        "https://apps.example/i?x=1",
        "https://e.example/b#top",
    )
    assert (target.routed, target.plain, target.rules) == (True, False, ())
    assert target.headers is target.locations[0]
    assert dict(target.headers_for(b"", 1))[b"location"] == b"https://apps.example/i?x=1"
    forwarded = dict(target.headers_for(b"utm=a", 2))
    assert forwarded[b"location"] == b"https://e.example/b?utm=a#top"
    assert forwarded[b"cache-control"] == b"private, max-age=90"
    assert target.location(b"utm=a", 1) == "https://apps.example/i?x=1&utm=a"
    # Without rules: one URL, and a plain link.
    plain = Target(**{**{d.name: getattr(target, d.name) for d in DECLARED}, "targeting": None})
    assert (plain.urls, plain.routed, plain.plain) == (("https://e.example/",), False, True)


def test_the_variants_urls_follow_the_rules_and_only_they_are_recorded_as_variants() -> None:
    rules = '[{"url":"https://apps.example/i","conditions":[{"type":"device","in":["ios"]}]}]'
    target = Target(
        link_id=1,
        version=1,
        status=302,
        url="https://e.example/",
        forward_query=False,
        starts_at=None,
        expires_at=None,
        max_visits=None,
        targeting=rules,
        variants_json=stored([("https://a.example/", 1), ("https://b.example/", 1)], "random"),
    )
    assert target.urls == (
        "https://e.example/",
        "https://apps.example/i",
        "https://a.example/",
        "https://b.example/",
    )
    assert target.variants is not None
    assert [v.at for v in target.variants.items] == [2, 3]
    assert [target.variant_at(at) for at in range(4)] == [
        None,
        None,
        "https://a.example/",
        "https://b.example/",
    ]
    assert dict(target.headers_for(b"", 3))[b"location"] == b"https://b.example/"
    assert (target.routed, target.plain) == (True, False)
