"""Reading a kurz export back, line by line: what each line becomes, a file that is no
kurz export, a line that cannot be read, a file cut short, pages and resuming."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from kurz.imports import kurz_file
from kurz.imports.kinds import KINDS
from kurz.imports.kurz_file import CUT_SHORT, UNKNOWN_LINK, KurzFile
from kurz.imports.sources import (
    Clicks,
    DayBreakdown,
    DayClicks,
    HourClicks,
    Item,
    NoSettings,
    Opening,
    Page,
    Record,
    SourceError,
    Unreadable,
)

HEADER = {
    "type": "export", "format": "kurz-export", "version": 1,
    "exported_at": "2026-01-01T12:00:00Z", "kurz_version": "0.1.0",
    "base_url": "https://s.example", "default_domain": "s.example",
    "links": "all", "user": None, "statistics": True,
}  # fmt: skip
# docs/export.md's example line.
LINK: dict[str, Any] = {
    "type": "link", "id": 42, "code": "spring", "domain": "go.example",
    "short_url": "https://go.example/spring", "url": "https://example.com/full", "alias": True,
    "created_at": "2025-12-01T09:30:00Z", "updated_at": "2025-12-02T10:00:00Z",
    "valid_from": None, "expires_at": "2026-06-01T00:00:00Z", "max_visits": 500,
    "fallbacks": {"not_yet": None, "expired": "https://example.com/over", "used_up": None},
    "redirect_status": 302, "forward_query": False, "tags": ["launch", "spring"],
    "rules": [{"url": "https://example.com/de", "match": "any",
               "conditions": [{"type": "country", "in": ["DE", "AT"]}]}],
    "variants": [{"url": "https://example.com/a", "weight": 70},
                 {"url": "https://example.com/b", "weight": 30}],
    "variant_choice": "sticky", "version": 3, "created_by": {"user": 7, "key": 12},
    "updated_by": {"user": 7, "key": None}, "password_protected": True, "og_title": "Spring",
    "og_description": None, "og_image": None, "owner": "alice@example.com",
    "default_domain": False, "visits": 17, "password_hash": "$argon2id$v=19$m=65536,t=3,p=4$x",
    "deleted_at": None,
}  # fmt: skip
NAMED = {"domain": "go.example", "default_domain": False, "code": "spring"}
DAILY = {"type": "clicks_daily", **NAMED,
         "rows": [{"day": "2025-12-01", "clicks": 120, "uniques": 97,
                   "bot_clicks": 4}]}  # fmt: skip
HOURLY = {"type": "clicks_hourly", **NAMED,
          "rows": [{"hour": "2025-12-01T09:00:00Z", "clicks": 31, "uniques": 29,
                    "bot_clicks": 1}]}  # fmt: skip
BREAKDOWNS = {"type": "breakdowns_daily", **NAMED,
              "rows": [{"dimension": "country", "day": "2025-12-01", "value": "DE", "clicks": 64},
                       {"dimension": "bot", "day": "2025-12-01", "value": "Googlebot",
                        "clicks": 4}]}  # fmt: skip
END = {"type": "end", "links": 1, "deleted_links": 0, "clicks_daily": 1, "clicks_hourly": 1,
       "breakdowns_daily": 2}  # fmt: skip


def link(code: str, **more: Any) -> dict[str, Any]:
    """A link on the default domain."""
    return {**LINK, "code": code, "domain": "s.example", "default_domain": True, **more}


def of(code: str, line: dict[str, Any]) -> dict[str, Any]:
    """A statistics line of the link `link(code)`."""
    return {**line, "domain": "s.example", "default_domain": True, "code": code}


def jsonl(*lines: Any) -> bytes:
    return b"".join(
        line if isinstance(line, bytes) else orjson.dumps(line) + b"\n" for line in lines
    )


@pytest.fixture
def write(tmp_path: Path) -> Any:
    def make(body: bytes) -> Path:
        path = tmp_path / "export.jsonl"
        path.write_bytes(body)
        return path

    return make


async def pages(source: KurzFile, after: str | None = None) -> list[Page]:
    found = [page async for page in source.pages(after)]
    await source.aclose()
    return found


def places(read: Sequence[Item]) -> list[str]:
    return [item.place for item in read if not isinstance(item, Clicks)]


def items(read: Sequence[Page]) -> list[Item]:
    return [item for page in read for item in page.items]


async def test_each_line_becomes_what_it_holds(write: Any) -> None:
    path = write(jsonl(HEADER, LINK, DAILY, HOURLY, BREAKDOWNS, END))
    source = KurzFile(path)
    assert await source.total() == 1
    read = await pages(source)
    size = path.stat().st_size
    assert [page.position for page in read] == [f"{size}:{size}"]
    at = datetime(2025, 12, 1, tzinfo=UTC)
    assert items(read) == [
        Record(
            place="line 2",
            source_id="go.example/spring",
            url="https://example.com/full",
            alias="spring",
            domain="go.example",
            title="Spring",
            tags=("launch", "spring"),
            created_at=at.replace(hour=9, minute=30),
            starts_at=None,
            expires_at=datetime(2026, 6, 1, tzinfo=UTC),
            max_visits=500,
            visits=17,
            redirect_status=302,
            forward_query=False,
            rules=LINK["rules"],
            variants=LINK["variants"],
            variant_choice="sticky",
            fallbacks=LINK["fallbacks"],
            password_hash="$argon2id$v=19$m=65536,t=3,p=4$x",
            og_description=None,
            og_image=None,
            deleted_at=None,
        ),
        Clicks("go.example/spring", daily=[DayClicks(date(2025, 12, 1), 120, 4, 97)]),
        Clicks("go.example/spring", hourly=[HourClicks(at.replace(hour=9), 31, 1, 29)]),
        Clicks(
            "go.example/spring",
            breakdowns=[
                DayBreakdown("country", date(2025, 12, 1), "DE", 64),
                DayBreakdown("bot", date(2025, 12, 1), "Googlebot", 4),
            ],
        ),
    ]


async def test_a_link_on_the_default_domain_names_none_and_a_tombstone_its_deletion(
    write: Any,
) -> None:
    gone = "2025-12-03T08:00:00.123456Z"
    path = write(jsonl(HEADER, link("home", deleted_at=gone), END))
    (record,) = items(await pages(KurzFile(path)))
    assert isinstance(record, Record)
    assert (record.source_id, record.alias, record.domain) == ("s.example/home", "home", None)
    assert record.deleted_at == datetime(2025, 12, 3, 8, 0, 0, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"", "not a kurz export: the file is empty"),
        (b"\n", "not a kurz export: the file is empty"),
        (b"code,url\nabc,https://example.com/\n",
         "not a kurz export: its first line is not the `export` header"),
        (jsonl(LINK, END), "not a kurz export: its first line is not the `export` header"),
        (jsonl({**HEADER, "format": "other"}),
         "not a kurz export: its format is 'other'"),
        (jsonl({**HEADER, "version": 2}, link("x"), END),
         "a kurz export of version 2: this kurz reads version 1 only"),
        (jsonl({**HEADER, "exported_at": "yesterday"}),
         "not a kurz export: its header's exported_at: Input should be a valid datetime or "
         "date, input is too short"),
    ],
)  # fmt: skip
async def test_a_file_that_is_no_kurz_export_of_version_1_is_refused(
    write: Any, body: bytes, says: str
) -> None:
    source = KurzFile(write(body))
    with pytest.raises(SourceError) as refused:
        await pages(source)
    assert str(refused.value) == says
    assert await source.total() is None


async def test_a_line_that_cannot_be_read_is_reported_and_the_rest_goes_on(write: Any) -> None:
    bad_day = {"day": "2025-12-01", "clicks": -1, "uniques": 0, "bot_clicks": 0}
    body = jsonl(
        HEADER,
        link("a"),  # 2
        b"{not json\n",
        link("b", url=None),
        {**of("a", DAILY), "rows": [bad_day]},  # 5
        of("b", DAILY),
        of("z", DAILY),
        {"type": "shorty", "code": "x"},
        [1, 2],
        b"\n",  # 10
        link("c", surprise=1, redirect_status="x"),
        HEADER,
        link("d"),
        of("d", HOURLY),
        {**END, "links": 6},  # 15
    )
    read = await pages(KurzFile(write(body)))
    assert [page.items for page in read] == [
        [
            items(await pages(KurzFile(write(jsonl(HEADER, link("a"), END)))))[0],
            Unreadable(
                "line 5",
                "clicks_daily line: rows.0.clicks: Input should be greater than or equal to 0",
                "s.example/a",
            ),
            Unreadable("line 3", "not JSON"),
            # The statistics of a link that cannot be read go with it.
            Unreadable("line 4", "link line: url: Input should be a valid string", "s.example/b"),
            Unreadable("line 7", UNKNOWN_LINK, "s.example/z"),
            Unreadable("line 8", "not a line of the kurz format (its `type` is unknown)"),
            Unreadable("line 9", "not a JSON object"),
        ],
        [
            Unreadable(
                "line 11",
                "link line: redirect_status: Input should be a valid integer, unable to parse "
                "string as an integer (and 1 more)",
                "s.example/c",
            ),
            Unreadable("line 12", "a second `export` header: two files joined?"),
            Record(**{**vars_of(read[1].items[2]), "place": "line 13"}),
            Clicks(
                "s.example/d",
                hourly=[HourClicks(datetime(2025, 12, 1, 9, tzinfo=UTC), 31, 1, 29)],
            ),
        ],
    ]
    assert isinstance(read[0].items[0], Record)
    assert (read[0].items[0].place, read[1].items[2].source_id) == ("line 2", "s.example/d")


def vars_of(item: Item) -> dict[str, Any]:
    return {name: getattr(item, name) for name in item.__slots__}


async def test_a_file_cut_short_gives_what_it_holds_and_says_so(write: Any) -> None:
    whole = jsonl(HEADER, link("a"), link("b"), of("a", DAILY), END)
    cut = whole[: whole.index(b'{"type":"clicks_daily"') + 30]
    source = KurzFile(write(cut))
    assert await source.total() is None
    read = items(await pages(source))
    assert places(read) == ["line 2", "line 3", "line 4", "line 5"]
    assert read[2] == Unreadable("line 4", "not JSON", None)
    assert read[3] == Unreadable("line 5", CUT_SHORT)

    # Cut at a line's end: every line read, and the end missing.
    lines = jsonl(HEADER, link("a"), of("a", DAILY))
    read = items(await pages(KurzFile(write(lines))))
    assert [type(item) for item in read] == [Record, Clicks, Unreadable]
    assert read[-1] == Unreadable("line 4", CUT_SHORT)
    assert items(await pages(KurzFile(write(jsonl(HEADER))))) == [Unreadable("line 2", CUT_SHORT)]
    assert await pages(KurzFile(write(jsonl(HEADER, {**END, "links": 0})))) == []


async def test_what_follows_the_end_line_is_not_read(write: Any) -> None:
    body = jsonl(HEADER, link("a"), END, HEADER, link("b"), END)
    read = items(await pages(KurzFile(write(body))))
    assert places(read) == ["line 2", "line 4"]
    tail = len(jsonl(HEADER, link("b"), END))
    assert read[1] == Unreadable("line 4", f"{tail:,} bytes after the `end` line are not read")


async def test_a_line_too_long_for_kurz_is_passed_over_unread(
    write: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kurz_file, "MAX_LINE", 2_000)
    monkeypatch.setattr(kurz_file, "_CHUNK", 100)
    long = link("long", tags=[f"tag-{n}" for n in range(300)])
    read = items(await pages(KurzFile(write(jsonl(HEADER, link("a"), long, link("b"), END)))))
    assert [type(item) for item in read] == [Record, Unreadable, Record]
    assert places(read) == ["line 2", "line 3", "line 4"]
    assert read[1] == Unreadable("line 3", kurz_file.TOO_LONG)


def many(links: int, *, block: int = 4) -> bytes:
    """`links` links, as an export of `block` links a page writes them: each link with
    a line of 3 days and one of 3 hours, after its block's links."""
    lines: list[dict[str, Any]] = [HEADER]
    days = [{"day": f"2025-12-0{d}", "clicks": d, "uniques": 1, "bot_clicks": 0} for d in (1, 2, 3)]
    hours = [{"hour": f"2025-12-01T0{d}:00:00Z", "clicks": d, "uniques": 1, "bot_clicks": 0}
             for d in (1, 2, 3)]  # fmt: skip
    for first in range(0, links, block):
        codes = [f"l{n}" for n in range(first, min(first + block, links))]
        lines += [link(code) for code in codes]
        lines += [of(code, {"type": "clicks_daily", "rows": days}) for code in codes]
        lines += [of(code, {"type": "clicks_hourly", "rows": hours}) for code in codes]
    return jsonl(*lines, {**END, "links": links})


def shape(read: Sequence[Page]) -> list[list[str]]:
    """Each page's items: a link's code, or its statistics' kind."""
    return [
        [
            item.alias or "" if isinstance(item, Record)
            else "daily" if isinstance(item, Clicks) and item.daily
            else "hourly" if isinstance(item, Clicks)
            else "?"
            for item in page.items
        ]
        for page in read
    ]  # fmt: skip


async def test_a_page_gives_each_link_with_all_its_statistics(write: Any) -> None:
    path = write(many(10))
    assert shape(await pages(KurzFile(path))) == [
        ["l0", "daily", "hourly", "l1", "daily", "hourly",
         "l2", "daily", "hourly", "l3", "daily", "hourly"],
        ["l4", "daily", "hourly", "l5", "daily", "hourly",
         "l6", "daily", "hourly", "l7", "daily", "hourly"],
        ["l8", "daily", "hourly", "l9", "daily", "hourly"],
    ]  # fmt: skip
    for read in (await pages(KurzFile(path)), await pages(KurzFile(path, links_per_page=1))):
        for page in read:
            for item in page.items:
                if isinstance(item, Clicks):
                    assert item.source_id == f"s.example/{item.source_id[10:]}"
                    assert any(
                        isinstance(other, Record) and other.source_id == item.source_id
                        for other in page.items
                    )


async def test_pages_are_bounded_in_links_and_in_rows(write: Any) -> None:
    path = write(many(10))
    whole = items(await pages(KurzFile(path)))
    by_links = await pages(KurzFile(path, links_per_page=3))
    # 3 links a page, within a block of the export's.
    assert [sum(isinstance(item, Record) for item in page.items) for page in by_links] == [
        3, 1, 3, 1, 2,
    ]  # fmt: skip
    # A page ends after the link whose statistics reach 7 rows (6 a link).
    by_rows = await pages(KurzFile(path, rows_per_page=7))
    assert shape(by_rows)[0] == ["l0", "daily", "hourly", "l1", "daily", "hourly"]
    assert [len(page.items) for page in by_rows] == [6, 6, 6, 6, 6]
    assert items(by_links) == items(by_rows) == whole
    assert len(whole) == 30
    size = path.stat().st_size
    assert by_links[-1].position == by_rows[-1].position == f"{size}:{size}"


async def test_resuming_after_a_page_gives_what_followed_it(write: Any) -> None:
    with_stray = many(10).replace(
        b'{"type":"clicks_hourly"', b'{"type":"x"}\n{"type":"clicks_hourly"', 1
    )
    for body in (many(10), many(10)[: -len(jsonl(END)) - 5], with_stray, many(7, block=7)):
        path = write(body)
        first = await pages(KurzFile(path, links_per_page=3))
        assert len(first) >= 3
        for n, page in enumerate(first):
            assert await pages(KurzFile(path, links_per_page=3), page.position) == first[n + 1 :]


async def test_a_position_not_in_the_file_is_refused(write: Any) -> None:
    path = write(many(2))
    size, start = path.stat().st_size, len(jsonl(HEADER))
    for position, says in [
        ("", "the position '' is not one this source gives"),
        ("12", "the position '12' is not one this source gives"),
        ("-3:-3", "the position '-3:-3' is not one this source gives"),
        ("5:5", "the position '5:5' is not in the file"),
        (f"{size + 1}:{size + 1}", f"the position '{size + 1}:{size + 1}' is not in the file"),
        (f"{start}:{start - 1}", "is not in the file"),
        (f"{start + 3}:{start + 3}", "is not the start of a line"),
        (f"{start}:{start + 3}", "is not the start of a line"),
        # Into the block's statistics.
        (f"{start}:{start + len(jsonl(*[link(f'l{n}') for n in range(5)]))}", "not in the file"),
    ]:
        with pytest.raises(SourceError, match=says):
            await pages(KurzFile(path), position)


def test_the_kind_is_registered_and_opens_the_file(tmp_path: Path) -> None:
    kind = KINDS["kurz"]
    assert (kind.source, kind.takes_file, kind.settings) == ("kurz", True, NoSettings)
    source = kind.open(Opening(settings=NoSettings(), file=tmp_path / "f.jsonl"))
    assert isinstance(source, KurzFile)
    with pytest.raises(SourceError, match="none was given"):
        kind.open(Opening(settings=NoSettings()))
