"""The CSV file source: columns by their header names, the file's encoding and
separator, rows it cannot read, and going on from a page."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kurz.exports.service import CSV_COLUMNS
from kurz.imports.csv_file import COLUMNS
from kurz.imports.sources import Clicks, Page, Record, SourceError, Unreadable
from tests.unit.imports.reading import items, pages, pages_into, records, source, write

URL = "https://example.com/a"
WHEN = datetime(2026, 1, 31, 9, 30, tzinfo=UTC)
# For each field: a cell and what the record (or its Clicks) holds from it.
CELLS: dict[str, tuple[str, dict[str, object]]] = {
    "alias": ("promo", {"alias": "promo", "source_id": "promo"}),
    "domain": ("go.example", {"domain": "go.example", "source_id": f"go.example/{URL}"}),
    "title": ("Spring sale", {"title": "Spring sale"}),
    "tags": ("spring|sale", {"tags": ("spring", "sale")}),
    "created_at": ("2026-01-31T09:30:00Z", {"created_at": WHEN}),
    "starts_at": ("2026-01-31 09:30", {"starts_at": WHEN}),
    "expires_at": ("1769851800", {"expires_at": WHEN}),
}
NAMES = [(column.field, name) for column in COLUMNS for name in column.names]


@pytest.mark.parametrize(("field", "name"), NAMES)
async def test_each_column_is_read_by_each_of_its_names(
    tmp_path: Path, field: str, name: str
) -> None:
    if field == "url":
        path = write(tmp_path / "links.csv", [name, URL])
        [record] = await records("csv", path)
        assert (record.url, record.source_id, record.place) == (URL, URL, "line 2")
        return
    path = write(tmp_path / "links.csv", [f"url,{name}", f"{URL},{_cell(field)}"])
    read = await items("csv", path)
    first = read[0]
    assert isinstance(first, Record)
    assert first.url == URL
    if field == "clicks":
        assert read[1:] == [Clicks(URL, total=1234)]
        return
    assert len(read) == 1
    for attribute, value in CELLS[field][1].items():
        assert getattr(first, attribute) == value


def _cell(field: str) -> str:
    return '"1,234"' if field == "clicks" else CELLS[field][0]


@pytest.mark.parametrize("name", ["Long URL", "LONG_URL", "long-url", " longUrl "])
async def test_header_names_compare_without_case_spaces_or_punctuation(
    tmp_path: Path, name: str
) -> None:
    path = write(tmp_path / "links.csv", [name, URL])
    assert [record.url for record in await records("csv", path)] == [URL]


async def test_a_file_with_two_names_for_a_field_reads_the_first_in_order_of_preference(
    tmp_path: Path,
) -> None:
    path = write(tmp_path / "links.csv", ["destination,alias,url,slug", f"x,first,{URL},second"])
    [record] = await records("csv", path)
    assert (record.url, record.alias) == (URL, "first")


async def test_a_row_without_alias_or_domain_is_the_url_and_all_fields_are_optional(
    tmp_path: Path,
) -> None:
    path = write(tmp_path / "links.csv", ["url,alias,domain,title,tags,expires_at,clicks", URL])
    assert await items("csv", path) == [Record(place="line 2", source_id=URL, url=URL)]


async def test_one_url_twice_without_aliases_is_one_source_id(tmp_path: Path) -> None:
    path = write(tmp_path / "links.csv", ["url,alias", URL, f"{URL},a1", URL])
    ids = [record.source_id for record in await records("csv", path)]
    assert ids == [URL, "a1", URL]


SAMPLE = [
    ["url", "alias", "title", "tags"],
    [URL, "one", 'Café, "quoted"', "a,b"],
    ["https://example.com/b", "two", "x; y", ""],
]


@pytest.mark.parametrize("bom", [False, True], ids=["no-bom", "bom"])
@pytest.mark.parametrize("delimiter", [",", ";", "\t"], ids=["comma", "semicolon", "tab"])
@pytest.mark.parametrize("end", ["\r\n", "\n", "\r"], ids=["crlf", "lf", "cr"])
async def test_utf_8_with_or_without_bom_separated_by_commas_semicolons_or_tabs(
    tmp_path: Path, bom: bool, delimiter: str, end: str
) -> None:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator=end).writerows(SAMPLE)
    path = tmp_path / "links.csv"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + out.getvalue().encode())
    assert await records("csv", path) == [
        Record("line 2", "one", URL, alias="one", title='Café, "quoted"', tags=("a", "b")),
        Record("line 3", "two", "https://example.com/b", alias="two", title="x; y"),
    ]


async def test_an_excel_sep_line_names_the_separator(tmp_path: Path) -> None:
    # Without it, "url|alias" would be one column named "url|alias".
    path = write(tmp_path / "links.csv", ["sep=|", "url|alias", f"{URL}|one"])
    [record] = await records("csv", path)
    assert (record.url, record.alias, record.place) == (URL, "one", "line 3")


async def test_the_separator_is_the_one_that_finds_the_url_column(tmp_path: Path) -> None:
    # As many commas as semicolons in the header, but only semicolons find "url".
    path = write(tmp_path / "links.csv", ["url;title;a, b, c", f"{URL};Hello, world;x"])
    [record] = await records("csv", path)
    assert (record.url, record.title) == (URL, "Hello, world")


async def test_quoted_fields_hold_line_feeds_and_places_are_physical_lines(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path / "links.csv",
        [
            "url,title,tags",
            f'{URL},"two\nlines","a\nb, c"',
            "",
            'https://example.com/b,"three\r\nlines\r\nhere",',
            "https://example.com/c,plain,",
        ],
    )
    assert [(r.place, r.title, tuple(r.tags)) for r in await records("csv", path)] == [
        ("line 2", "two\nlines", ("a", "b, c")),
        ("line 6", "three\r\nlines\r\nhere", ()),
        ("line 9", "plain", ()),
    ]


async def test_empty_lines_and_rows_of_empty_cells_are_skipped(tmp_path: Path) -> None:
    path = write(tmp_path / "links.csv", ["", "url,alias", "", f"{URL},one", ",", " , ", ""])
    opened = source("csv", path)
    assert await opened.total() == 1
    assert [r.place for r in await records("csv", path)] == ["line 4"]


async def test_bad_rows_are_unreadable_with_the_reason_and_the_rest_goes_on(
    tmp_path: Path,
) -> None:
    huge = "x" * (csv.field_size_limit() + 1)
    path = write(
        tmp_path / "links.csv",
        [
            "url,alias,expires,clicks",
            f"{URL},ok1,,",
            ",no-url,,",
            f"{URL},bad-date,31/12/2026,",
            f"{URL},bad-clicks,,many",
            f"{URL},extra,,,surplus",
            f"{URL},{huge},,",
            f'{URL},"{huge}",,',
            f"{URL},ok2,2026-12-31,3",
        ],
    )
    assert await items("csv", path) == [
        Record("line 2", "ok1", URL, alias="ok1"),
        Unreadable("line 3", "it has no long URL"),
        Unreadable(
            "line 4",
            "expires '31/12/2026' is not a time kurz reads: ISO 8601 "
            "(2026-01-31, 2026-01-31T09:30:00Z) or unix seconds",
            source_id="bad-date",
        ),
        Unreadable("line 5", "clicks 'many' is not a whole number", source_id="bad-clicks"),
        Unreadable(
            "line 6",
            "it has 5 cells where the header has 4 columns "
            "(a value holding the separator that is not in double quotes?)",
        ),
        Unreadable("line 7", f"a cell is longer than {csv.field_size_limit():,} characters"),
        Unreadable("line 8", f"a cell is longer than {csv.field_size_limit():,} characters"),
        Record(
            "line 9",
            "ok2",
            URL,
            alias="ok2",
            expires_at=datetime(2026, 12, 31, tzinfo=UTC),
        ),
        Clicks("ok2", total=3),
    ]


async def test_a_header_without_a_url_column_is_a_source_error_naming_its_columns(
    tmp_path: Path,
) -> None:
    path = write(tmp_path / "links.csv", ["Link;Name;Tags", "https://x;y;z"])
    with pytest.raises(SourceError) as raised:
        await pages("csv", path)
    assert str(raised.value) == (
        "The file has no column for the long URL: kurz looks for one named url, long_url, "
        "target, destination, target_url or destination_url. The header row names 'Link', "
        "'Name', 'Tags'."
    )
    assert await source("csv", path).total() is None


@pytest.mark.parametrize("content", [b"", b"\r\n\r\n", b"\xef\xbb\xbf"])
async def test_an_empty_file_is_a_source_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "links.csv"
    path.write_bytes(content)
    with pytest.raises(SourceError, match=r"^The file is empty: a CSV file starts with a header"):
        await pages("csv", path)


async def test_a_header_alone_is_no_links(tmp_path: Path) -> None:
    path = write(tmp_path / "links.csv", ["url,alias"])
    assert await pages("csv", path) == []
    assert await source("csv", path).total() == 0


async def test_a_file_that_is_not_utf_8_is_a_source_error_saying_where(tmp_path: Path) -> None:
    path = tmp_path / "links.csv"
    # Windows-1252, as Excel's plain "CSV" writes it: é is one byte, 0xE9.
    text = "url,title\r\nhttps://a.example,ok\r\nhttps://b.example,café\r\n"
    path.write_bytes(text.encode("cp1252"))
    with pytest.raises(SourceError) as raised:
        await pages("csv", path)
    assert str(raised.value) == (
        "The file is not UTF-8 text: line 3 has byte 0xE9 (byte 55 of the file), which UTF-8 "
        "does not allow. Save it as UTF-8 (\u201cCSV UTF-8\u201d in a spreadsheet) and import "
        "it again."
    )


async def test_a_bad_byte_far_into_the_file_stops_it_there_saying_where(
    tmp_path: Path,
) -> None:
    rows = [f"https://example.com/{n}" for n in range(1_200)]
    path = write(tmp_path / "links.csv", ["url", *rows, "https://example.com/\xff", "https://x"])
    path.write_bytes(path.read_bytes().replace(b"\xc3\xbf", b"\xff"))
    read: list[Page] = []
    with pytest.raises(SourceError) as raised:
        await pages_into(read, "csv", path)
    assert [page.position for page in read] == ["500", "1000"]
    at = path.read_bytes().index(b"\xff") + 1
    assert str(raised.value).startswith(
        f"The file is not UTF-8 text: line 1202 has byte 0xFF (byte {at:,} of the file)"
    )
    # Going on from the last page meets it again.
    with pytest.raises(SourceError, match="line 1202 has byte 0xFF"):
        await pages("csv", path, after="1000")


@pytest.mark.parametrize(
    ("content", "what"),
    [
        ("url\r\nhttps://x\r\n".encode("utf-16"), "UTF-16 text; kurz reads UTF-8"),
        (b"PK\x03\x04\x14\x00\x06\x00", "a ZIP archive (an .xlsx workbook?), not CSV text"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel .xls workbook, not CSV text"),
    ],
)
async def test_a_workbook_or_utf_16_is_a_source_error_saying_what_it_is(
    tmp_path: Path, content: bytes, what: str
) -> None:
    path = tmp_path / "links.csv"
    path.write_bytes(content)
    with pytest.raises(SourceError, match="^" + re.escape(f"The file is {what}. Save it as UTF-8")):
        await pages("csv", path)


async def test_a_utf_8_character_cut_short_at_the_end_is_a_source_error(tmp_path: Path) -> None:
    path = tmp_path / "links.csv"
    path.write_bytes(b"url\nhttps://x/\xc3")
    with pytest.raises(SourceError, match="line 2 has a character cut short at its end"):
        await pages("csv", path)


async def test_a_file_that_is_gone_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"^The file cannot be read: No such file"):
        await pages("csv", tmp_path / "gone.csv")
    assert await source("csv", tmp_path / "gone.csv").total() is None


async def test_pages_hold_500_records_and_going_on_from_one_gives_the_rest(
    tmp_path: Path,
) -> None:
    rows = ["url,alias,expires"]
    for n in range(1, 1_800):
        if n % 97 == 0:
            rows.append(f"https://example.com/{n},bad{n},never")
        elif n % 89 == 0:
            rows.append("")
        else:
            rows.append(f'https://example.com/{n},a{n},"{"2026-01-01" if n % 2 else ""}"')
    path = write(tmp_path / "links.csv", rows)
    everything = await pages("csv", path)
    assert [page.position for page in everything] == ["500", "1000", "1500", "1799"]
    assert sum(len(page.items) for page in everything) == 1_799 - 1_799 // 89 + 1_799 // (89 * 97)
    assert await source("csv", path).total() == 1_799 - 1_799 // 89 + 1_799 // (89 * 97)
    for index, page in enumerate(everything):
        assert await pages("csv", path, after=page.position) == everything[index + 1 :]
    # A page's items are the same read whole or going on.
    assert (await pages("csv", path, after="0")) == everything


@pytest.mark.parametrize("position", ["-1", "abc", "1.5", ""])
async def test_a_position_this_source_never_gave_is_a_source_error(
    tmp_path: Path, position: str
) -> None:
    path = write(tmp_path / "links.csv", ["url", URL])
    with pytest.raises(SourceError, match="is not a position in a CSV file"):
        await pages("csv", path, after=position)


# The columns a round trip writes, and cells for them: text without surrounding blanks
# (cells are stripped), tags without separators, times in UTC.
_TEXT = st.text(
    st.characters(exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp"), exclude_characters="\ufeff"),
    min_size=1,
    max_size=30,
)
_SPACED = st.builds(lambda a, b: f"{a} {b}", _TEXT, _TEXT) | _TEXT
_TAG = _TEXT.filter(lambda tag: not set(tag) & set(",;|"))
_MOMENT = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
_ROW = st.fixed_dictionaries(
    {"url": _TEXT},
    optional={
        "alias": _TEXT,
        "domain": _TEXT,
        "title": _SPACED | st.text(min_size=1, max_size=30).map(lambda t: f"x{t}x"),
        "tags": st.lists(_TAG, min_size=1, max_size=4, unique=True),
        "created_at": _MOMENT,
        "expires_at": _MOMENT,
        "clicks": st.integers(min_value=1, max_value=10**12),
    },
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(_ROW, min_size=1, max_size=20),
    delimiter=st.sampled_from([",", ";", "\t"]),
    tag_separator=st.sampled_from(["\n", "|", ", "]),
    bom=st.booleans(),
)
async def test_any_links_written_by_pythons_csv_writer_read_back_equal(
    tmp_path: Path,
    rows: list[dict[str, object]],
    delimiter: str,
    tag_separator: str,
    bom: bool,
) -> None:
    names = ["url", "alias", "domain", "title", "tags", "created_at", "expires_at", "clicks"]
    out = io.StringIO()
    writer = csv.DictWriter(out, names, delimiter=delimiter)
    writer.writeheader()
    for row in rows:
        cells = dict(row)
        if "tags" in row:
            cells["tags"] = tag_separator.join(row["tags"])  # type: ignore[arg-type]
        for when in ("created_at", "expires_at"):
            if when in row:
                cells[when] = row[when].isoformat()  # type: ignore[attr-defined]
        writer.writerow(cells)
    path = tmp_path / "round-trip.csv"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + out.getvalue().encode())

    everything = await items("csv", path)
    read = [item for item in everything if isinstance(item, Record)]
    clicks = [item for item in everything if isinstance(item, Clicks)]
    assert [
        {
            "url": record.url,
            **({"alias": record.alias} if record.alias else {}),
            **({"domain": record.domain} if record.domain else {}),
            **({"title": record.title} if record.title else {}),
            **({"tags": list(record.tags)} if record.tags else {}),
            **({"created_at": record.created_at} if record.created_at else {}),
            **({"expires_at": record.expires_at} if record.expires_at else {}),
        }
        for record in read
    ] == [{name: value for name, value in row.items() if name != "clicks"} for row in rows]
    assert [(c.source_id, c.total) for c in clicks] == [
        (record.source_id, row["clicks"])
        for record, row in zip(read, rows, strict=True)
        if "clicks" in row
    ]


async def test_only_kurzs_own_export_has_its_formula_apostrophes_taken_off(
    tmp_path: Path,
) -> None:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    cells = dict.fromkeys(CSV_COLUMNS, "")
    cells |= {"code": "abc", "url": URL, "domain": "s.example", "alias": "false"}
    cells |= {"title": "'=1+2", "tags": "'-x\nb", "clicks": "5"}
    writer.writerow(cells.values())
    exported = tmp_path / "export.csv"
    exported.write_text(out.getvalue())
    # The same cells in a file of another making are what they say.
    other = write(tmp_path / "other.csv", ["url,code,title,tags", f"{URL},abc,'=1+2,'-x"])

    assert await items("csv", exported) == [
        Record(
            "line 2",
            "s.example/abc",
            URL,
            alias="abc",
            domain="s.example",
            title="=1+2",
            tags=("-x", "b"),
        ),
        Clicks("s.example/abc", total=5),
    ]
    [record] = await records("csv", other)
    assert (record.alias, record.title, record.tags) == ("abc", "'=1+2", ("'-x",))
