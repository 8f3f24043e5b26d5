"""Charts as SVG made on the server: readable without JavaScript, printable, and
allowed by the pages' CSP (classes from kurz.css and presentation attributes, never a
style attribute).

Every text is escaped here, since labels can come from visitors (referrers, cities);
the markup returned is safe to put in a template as it is. A chart is an image with a
title and a summary (`role="img"`, `<title>`, `<desc>`); the page shows the same
numbers as a table beside it.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Final, Literal

from markupsafe import Markup, escape

Interval = Literal["hour", "day"]

WIDTH: Final = 720
HEIGHT: Final = 240
_LEFT, _RIGHT, _TOP, _BOTTOM = 52, 8, 10, 26
_PLOT_WIDTH = WIDTH - _LEFT - _RIGHT
_PLOT_HEIGHT = HEIGHT - _TOP - _BOTTOM
_BASE = _TOP + _PLOT_HEIGHT
# Past this many points bars are thinner than two pixels: a line reads better.
BAR_LIMIT: Final = 120
MAX_LABELS: Final = 8
_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")


# English whatever the locale (strftime's %b is the locale's, and slow).
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def when(at: date, interval: Interval) -> str:
    """A point's time in full, as a table row or a bar's tooltip names it."""
    day = f"{_MONTHS[at.month - 1]} {at.day}, {at.year}"
    if interval == "day" or not isinstance(at, datetime):
        return day
    return f"{day} {at.hour:02}:00 UTC"


def table(
    points: Sequence[tuple[datetime, int, *tuple[int, ...]]], interval: Interval
) -> list[tuple[str, ...]]:
    """The rows of the table beside a chart: each point's time in full, then its
    counts with thousands separators."""
    return [(when(at, interval), *(f"{n:,}" for n in counts)) for at, *counts in points]


def table_body(
    points: Sequence[tuple[datetime, int, *tuple[int, ...]]], interval: Interval
) -> Markup:
    """The rows `table` gives, as the `<tr>`s of a table's body: each time a row
    header, each count a number cell. Made here rather than by a template loop, which
    spent 3 ms escaping the cells of 720 hourly rows; a count is an int, formatted
    with digits and commas only (a text given for one fails: "," formats numbers
    only), so only the time is escaped."""
    rows = []
    for at, *counts in points:
        cells = '<td class="num">{:,}</td>' * len(counts)
        time = escape(when(at, interval))
        rows.append(f'<tr><th scope="row">{time}</th>{cells.format(*counts)}</tr>')
    return Markup("\n".join(rows))  # noqa: S704 - the times escaped, the counts numbers


def nice_ticks(peak: int, count: int = 4) -> list[int]:
    """Round values for a y axis from 0 to at least `peak`, about `count` steps apart."""
    if peak <= 0:
        return [0]
    raw = peak / count
    magnitude = 10 ** (len(str(int(raw))) - 1) if raw >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    top = -(-peak // step) * step
    return list(range(0, top + 1, step))


def compact(n: int) -> str:
    """A count short enough for an axis: 950, 9.5k, 95k, 9.5M."""
    if n < 1_000:
        return str(n)
    for size, suffix in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if n >= size:
            value = n / size
            text = f"{value:.1f}" if value < 10 else f"{value:.0f}"
            return text.removesuffix(".0") + suffix
    return str(n)  # pragma: no cover - unreachable: n >= 10,000 above


def _short_day(at: datetime) -> str:
    return f"{_MONTHS[at.month - 1]} {at.day}"


def _short_hour(at: datetime) -> str:
    return _short_day(at) if at.hour == 0 else f"{at.hour:02}:00"


def _month(at: datetime) -> str:
    return f"{_MONTHS[at.month - 1]} {at.year}"


Rule = tuple[Callable[[datetime], bool], Callable[[datetime], str]]
# Which points get an x label, finest first: the first rule that labels at most
# MAX_LABELS points is used.
_DAY_RULES: tuple[Rule, ...] = (
    (lambda at: True, _short_day),
    (lambda at: at.toordinal() % 2 == 0, _short_day),
    (lambda at: at.weekday() == 0, _short_day),
    (lambda at: at.weekday() == 0 and at.toordinal() // 7 % 2 == 0, _short_day),
    (lambda at: at.day == 1, _month),
    (lambda at: at.day == 1 and at.month % 3 == 1, _month),
    (lambda at: at.day == 1 and at.month % 6 == 1, _month),
    (lambda at: at.day == 1 and at.month == 1, _month),
)


def _hours(k: int) -> Rule:
    return (lambda at: at.hour % k == 0), _short_hour


def _midnights(rule: Rule) -> Rule:
    matches, label = rule
    return (lambda at: at.hour == 0 and matches(at)), label


_HOUR_RULES: tuple[Rule, ...] = (
    *(_hours(k) for k in (1, 2, 3, 6, 12)),
    *(_midnights(rule) for rule in _DAY_RULES),
)


def x_labels(times: Sequence[datetime], interval: Interval) -> list[tuple[int, str]]:
    """The points to label on the x axis, with their labels: whole days, Mondays,
    months, or hours that divide the day, at most MAX_LABELS of them."""
    for matches, label in _HOUR_RULES if interval == "hour" else _DAY_RULES:
        # A rule is left at its first label too many (720 hours, 13 rules).
        chosen = list(
            itertools.islice((i for i, at in enumerate(times) if matches(at)), MAX_LABELS + 1)
        )
        if len(chosen) <= MAX_LABELS:
            return [(i, label(times[i])) for i in chosen]
    every = math.ceil(len(times) / MAX_LABELS)
    return [(i, _short_day(times[i])) for i in range(0, len(times), every)]


def _n(value: float) -> str:
    """A coordinate, short: 12, 12.5, 12.34."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _attrs(**values: object) -> str:
    return "".join(
        f' {name.rstrip("_").replace("_", "-")}="{escape(str(value))}"'
        for name, value in values.items()
    )


def _describe(
    points: Sequence[tuple[datetime, int]], interval: Interval, what: str
) -> tuple[str, int]:
    if not points:
        return f"No {what}: the range is empty.", 0
    first, last = when(points[0][0], interval), when(points[-1][0], interval)
    total = sum(value for _, value in points)
    if total == 0:
        return f"No {what} from {first} to {last}.", 0
    peak_at, peak = max(points, key=lambda point: point[1])
    text = (
        f"{what.capitalize()} per {interval} from {first} to {last}: {total:,} in all; "
        f"the most, {peak:,}, {'on' if interval == 'day' else 'at'} {when(peak_at, interval)}."
    )
    return text, peak


def time_series(
    points: Sequence[tuple[datetime, int]],
    interval: Interval,
    *,
    chart_id: str,
    title: str,
    what: str = "clicks",
) -> Markup:
    """A chart of `points` (a time and a count each, in order, evenly spaced): bars,
    or a line past BAR_LIMIT points; an empty chart that says so when every count is 0.
    `chart_id` names its title and summary for aria-labelledby (unique on the page)."""
    if _ID.fullmatch(chart_id) is None:
        raise ValueError(f"not an id: {chart_id!r}")
    summary, peak = _describe(points, interval, what)
    ticks = nice_ticks(peak)
    top = ticks[-1] or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img"'
        f"{_attrs(viewBox=f'0 0 {WIDTH} {HEIGHT}', width=WIDTH, height=HEIGHT)}"
        f"{_attrs(aria_labelledby=f'{chart_id}-title {chart_id}-desc')}>",
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(summary)}</desc>',
    ]
    for tick in ticks:
        y = _BASE - tick / top * _PLOT_HEIGHT
        parts.append(
            f'<line class="grid"{_attrs(x1=_LEFT, y1=_n(y), x2=WIDTH - _RIGHT, y2=_n(y))}/>'
        )
        parts.append(
            f"<text{_attrs(x=_LEFT - 6, y=_n(y + 4), text_anchor='end')}>{compact(tick)}</text>"
        )
    band = _PLOT_WIDTH / len(points) if points else _PLOT_WIDTH
    for i, label in x_labels([at for at, _ in points], interval):
        x = min(max(_LEFT + (i + 0.5) * band, _LEFT + 20), WIDTH - _RIGHT - 20)
        parts.append(
            f"<text{_attrs(x=_n(x), y=HEIGHT - 8, text_anchor='middle')}>{escape(label)}</text>"
        )
    if peak == 0:
        parts.append(
            f"<text{_attrs(x=_LEFT + _PLOT_WIDTH // 2, y=_TOP + _PLOT_HEIGHT // 2)}"
            f"{_attrs(text_anchor='middle')}>No {escape(what)} in this period</text>"
        )
    elif len(points) <= BAR_LIMIT:
        gap = band * 0.2 if band >= 4 else 0.0
        for i, (at, value) in enumerate(points):
            height = value / top * _PLOT_HEIGHT
            box = _attrs(
                x=_n(_LEFT + i * band + gap / 2),
                y=_n(_BASE - height),
                width=_n(band - gap),
                height=_n(height),
            )
            tip = escape(f"{when(at, interval)}: {value:,} {what}")
            parts.append(f'<rect class="bar"{box}><title>{tip}</title></rect>')
    else:
        line = " ".join(
            f"{_n(_LEFT + (i + 0.5) * band)},{_n(_BASE - value / top * _PLOT_HEIGHT)}"
            for i, (_, value) in enumerate(points)
        )
        parts.append(f'<polyline class="line"{_attrs(points=line)}/>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - built above from escaped text only


def share_bar(share: float) -> Markup:
    """A small bar for a table's share column, `share` of the way across (0 to 1).
    Hidden from screen readers: the share is written beside it."""
    filled = _n(min(max(share, 0.0), 1.0) * 100)
    return Markup(  # noqa: S704 - numbers only
        '<svg xmlns="http://www.w3.org/2000/svg" class="chart sharebar" viewBox="0 0 100 10"'
        ' width="100" height="10" aria-hidden="true" focusable="false">'
        '<rect class="track" width="100" height="10"/>'
        f'<rect class="bar" width="{filled}" height="10"/></svg>'
    )
