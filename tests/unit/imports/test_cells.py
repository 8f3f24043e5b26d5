"""The values of a CSV file's cells: times, counts, tags, short links."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from kurz.imports import cells
from kurz.imports.cells import CellError


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2026-01-31", datetime(2026, 1, 31, tzinfo=UTC)),
        ("20260131", datetime(2026, 1, 31, tzinfo=UTC)),
        ("2026-01-31T09:30", datetime(2026, 1, 31, 9, 30, tzinfo=UTC)),
        ("2026-01-31 09:30:15", datetime(2026, 1, 31, 9, 30, 15, tzinfo=UTC)),
        ("2026-01-31T09:30:15Z", datetime(2026, 1, 31, 9, 30, 15, tzinfo=UTC)),
        ("2026-01-31T09:30:15.250+00:00", datetime(2026, 1, 31, 9, 30, 15, 250000, tzinfo=UTC)),
        ("2026-01-31T11:30:15+02:00", datetime(2026, 1, 31, 9, 30, 15, tzinfo=UTC)),
        ("2020-10-26T17:20:40+0000", datetime(2020, 10, 26, 17, 20, 40, tzinfo=UTC)),
        ("1769851815", datetime(2026, 1, 31, 9, 30, 15, tzinfo=UTC)),
        ("1769851815.5", datetime(2026, 1, 31, 9, 30, 15, 500000, tzinfo=UTC)),
        ("0", datetime(1970, 1, 1, tzinfo=UTC)),
    ],
)
def test_times_are_iso_8601_or_unix_seconds_and_come_back_in_utc(
    text: str, moment: datetime
) -> None:
    read = cells.when(text, column="expires_at")
    assert read == moment
    assert read.tzinfo is UTC


def test_a_time_with_its_zone_keeps_its_instant() -> None:
    east = datetime(2026, 1, 31, 11, 30, tzinfo=timezone(timedelta(hours=2)))
    assert cells.when(east.isoformat(), column="x") == east


@pytest.mark.parametrize(
    "text", ["tomorrow", "31/01/2026", "2026-13-01", "1769851815000", "-5", "2026-01-31 9am"]
)
def test_anything_else_is_an_error_naming_the_column_and_the_value(text: str) -> None:
    with pytest.raises(CellError) as raised:
        cells.when(text, column="Expires")
    assert raised.value.reason == (
        f"Expires {text!r} is not a time kurz reads: ISO 8601 "
        "(2026-01-31, 2026-01-31T09:30:00Z) or unix seconds"
    )


@pytest.mark.parametrize(
    ("text", "number"), [("0", 0), ("17", 17), ("1,234", 1234), ("12 345", 12345)]
)
def test_counts_are_whole_numbers(text: str, number: int) -> None:
    assert cells.count(text, column="clicks") == number


@pytest.mark.parametrize("text", ["-3", "1.5", "lots", "١٢"])
def test_a_count_that_is_not_a_whole_number_is_an_error(text: str) -> None:
    with pytest.raises(CellError, match=f"^clicks {text!r} is not a whole number$"):
        cells.count(text, column="clicks")


@pytest.mark.parametrize(
    ("text", "tags"),
    [
        ("launch", ("launch",)),
        ("a,b", ("a", "b")),
        ("a; b ;c", ("a", "b", "c")),
        ("a|b|a", ("a", "b")),
        (" a , , b ", ("a", "b")),
        # Line feeds (kurz's own export): a tag may then hold the other separators.
        ("a,b\nsay; hi\r\nx|y", ("a,b", "say; hi", "x|y")),
    ],
)
def test_tags_split_on_line_feeds_else_on_commas_semicolons_and_bars(
    text: str, tags: tuple[str, ...]
) -> None:
    assert cells.tags(text) == tags


def test_tags_split_on_the_separators_a_kind_names() -> None:
    assert cells.tags("a,b|c", "|") == ("a,b", "c")


@pytest.mark.parametrize(
    ("text", "plain"),
    [("'=1+2", "=1+2"), ("'+x", "+x"), ("'-x", "-x"), ("'@x", "@x"), ("'x", "'x"), ("=x", "=x")],
)
def test_the_apostrophe_kurzs_export_puts_before_a_formula_comes_off(text: str, plain: str) -> None:
    assert cells.unformula(text) == plain


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("https://bit.ly/3xYzAbc", ("bit.ly", "3xYzAbc")),
        ("http://Bit.LY/3xYzAbc/", ("bit.ly", "3xYzAbc")),
        ("bit.ly/3xYzAbc", ("bit.ly", "3xYzAbc")),
        ("es.pn/Promo?utm=1#top", ("es.pn", "Promo")),
        ("https://s.example:8080/abc", ("s.example:8080", "abc")),
    ],
)
def test_a_short_link_is_its_host_and_path(text: str, parts: tuple[str, str]) -> None:
    assert cells.short_link(text, column="Link") == parts


@pytest.mark.parametrize("text", ["bit.ly", "https://bit.ly/", "/abc"])
def test_a_short_link_without_a_host_or_path_is_an_error(text: str) -> None:
    with pytest.raises(CellError, match="is not a short link"):
        cells.short_link(text, column="Link")
