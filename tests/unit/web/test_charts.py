"""kurz.web.charts: well-formed SVG whatever the data, escaped text, and no division
by zero when there is nothing to draw."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kurz.web import charts
from kurz.web.charts import BAR_LIMIT, HEIGHT, WIDTH, Interval

SVG = "{http://www.w3.org/2000/svg}"
START = datetime(2026, 11, 5, tzinfo=UTC)
STEP: dict[Interval, timedelta] = {"hour": timedelta(hours=1), "day": timedelta(days=1)}


def xml(markup: str) -> ET.Element:
    """kurz's own markup, parsed: it fails unless well-formed."""
    return ET.fromstring(markup)  # noqa: S314 - kurz's output, not a stranger's


def series(values: list[int], interval: Interval = "day") -> list[tuple[datetime, int]]:
    return [(START + i * STEP[interval], value) for i, value in enumerate(values)]


def parsed(values: list[int], interval: Interval = "day", **kw: str) -> ET.Element:
    markup = charts.time_series(
        series(values, interval), interval, chart_id=kw.get("chart_id", "c"),
        title=kw.get("title", "Clicks"), what=kw.get("what", "clicks"),
    )  # fmt: skip
    return xml(str(markup))


def bars(svg: ET.Element) -> list[ET.Element]:
    return svg.findall(f"{SVG}rect[@class='bar']")


def test_a_bar_per_point_each_as_tall_as_its_count() -> None:
    svg = parsed([3, 0, 6, 1])
    assert svg.get("role") == "img"
    assert svg.get("aria-labelledby") == "c-title c-desc"
    assert svg.findtext(f"{SVG}title") == "Clicks"
    assert svg.findtext(f"{SVG}desc") == (
        "Clicks per day from Nov 5, 2026 to Nov 8, 2026: 10 in all; the most, 6, on Nov 7, 2026."
    )
    heights = [float(bar.get("height", "")) for bar in bars(svg)]
    assert len(heights) == 4
    assert heights[1] == 0
    assert heights[2] == pytest.approx(2 * heights[0])
    assert [bar.findtext(f"{SVG}title") for bar in bars(svg)][2] == "Nov 7, 2026: 6 clicks"
    assert "style" not in str(ET.tostring(svg))


def test_the_y_axis_has_round_ticks_above_the_peak() -> None:
    assert charts.nice_ticks(7) == [0, 2, 4, 6, 8]
    assert charts.nice_ticks(10) == [0, 5, 10]
    assert charts.nice_ticks(1) == [0, 1]
    assert charts.nice_ticks(1_234) == [0, 500, 1_000, 1_500]
    assert charts.nice_ticks(0) == [0]
    svg = parsed([7, 1])
    labels = [t.text for t in svg.findall(f"{SVG}text")]
    assert labels[:5] == ["0", "2", "4", "6", "8"]
    assert charts.compact(950) == "950"
    assert charts.compact(9_500) == "9.5k"
    assert charts.compact(2_000) == "2k"
    assert charts.compact(95_000) == "95k"
    assert charts.compact(1_250_000) == "1.2M"


def test_x_labels_fall_on_days_hours_or_mondays() -> None:
    day = [(START + i * STEP["hour"]) for i in range(24)]
    assert [label for _, label in charts.x_labels(day, "hour")] == [
        "Nov 5", "03:00", "06:00", "09:00", "12:00", "15:00", "18:00", "21:00",
    ]  # fmt: skip
    month = [(START + i * STEP["day"]) for i in range(30)]
    # 2026-11-09 is a Monday.
    assert charts.x_labels(month, "day")[0] == (4, "Nov 9")
    years = [(START + i * STEP["day"]) for i in range(1_096)]
    assert all(label.startswith(("Jan", "Jul")) for _, label in charts.x_labels(years, "day"))


def test_many_points_make_a_line() -> None:
    svg = parsed(list(range(BAR_LIMIT + 1)), "hour")
    assert bars(svg) == []
    [line] = svg.findall(f"{SVG}polyline[@class='line']")
    assert len(line.get("points", "").split()) == BAR_LIMIT + 1


def test_labels_are_escaped() -> None:
    hostile = "<script>alert('&')</script> & co"
    markup = str(
        charts.time_series(series([1, 2]), "day", chart_id="x", title=hostile, what=hostile)
    )
    assert "<script>" not in markup
    svg = xml(markup)
    assert svg.findtext(f"{SVG}title") == hostile
    assert hostile in (svg.findtext(f"{SVG}desc") or "")
    with pytest.raises(ValueError, match="not an id"):
        charts.time_series([], "day", chart_id='x" onload="alert(1)', title="t")


@pytest.mark.parametrize("values", [[], [0], [0, 0, 0]])
def test_no_clicks_is_an_empty_chart_that_says_so(values: list[int]) -> None:
    svg = parsed(values)
    assert bars(svg) == []
    texts = [t.text for t in svg.findall(f"{SVG}text")]
    assert "No clicks in this period" in texts
    assert (svg.findtext(f"{SVG}desc") or "").startswith("No clicks")


def test_a_share_bar_is_clamped() -> None:
    for share, width in ((0.25, "25"), (1.5, "100"), (-1.0, "0")):
        svg = xml(str(charts.share_bar(share)))
        assert svg.findall(f"{SVG}rect")[1].get("width") == width


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(st.integers(min_value=0, max_value=10**12), max_size=800),
    interval=st.sampled_from(["hour", "day"]),
)
def test_any_series_is_well_formed_and_inside_the_view(
    values: list[int], interval: Interval
) -> None:
    svg = parsed(values, interval)
    assert svg.get("viewBox") == f"0 0 {WIDTH} {HEIGHT}"
    drawn = bars(svg)
    if sum(values) and len(values) <= BAR_LIMIT:
        assert len(drawn) == len(values)
    for bar in drawn:
        x, y = float(bar.get("x", "")), float(bar.get("y", ""))
        width, height = float(bar.get("width", "")), float(bar.get("height", ""))
        assert x >= 0
        assert y >= 0
        assert x + width <= WIDTH + 0.01
        assert y + height <= HEIGHT + 0.01
        assert width >= 0
        assert height >= 0
    for line in svg.findall(f"{SVG}polyline"):
        for point in line.get("points", "").split():
            px, py = map(float, point.split(","))
            assert 0 <= px <= WIDTH
            assert 0 <= py <= HEIGHT
    for text in svg.findall(f"{SVG}text"):
        assert 0 <= float(text.get("x", "")) <= WIDTH
        assert 0 <= float(text.get("y", "")) <= HEIGHT


def test_the_table_beside_a_chart_names_each_point_in_full() -> None:
    points = [(START + timedelta(hours=9), 1_234, 5, 0)]
    assert charts.table(points, "hour") == [("Nov 5, 2026 09:00 UTC", "1,234", "5", "0")]
    assert charts.table(points, "day") == [("Nov 5, 2026", "1,234", "5", "0")]
    assert charts.when(START.date(), "hour") == "Nov 5, 2026"
