"""Reading a stats page or the dashboard back: its chart, its bars, its cards."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

SVG = "{http://www.w3.org/2000/svg}"


def chart(page: str) -> ET.Element:
    """The page's (first) chart, parsed: it must be well-formed."""
    found = re.search(r'<svg xmlns="http://www.w3.org/2000/svg" class="chart" .*?</svg>', page)
    assert found is not None, page
    return ET.fromstring(found.group(0))  # noqa: S314 - kurz's output, not a stranger's


def bars(page: str) -> int:
    return len(chart(page).findall(f"{SVG}rect[@class='bar']"))


def card(page: str, label: str) -> str:
    """The big number of the card headed `label`."""
    found = re.search(rf'<div>{re.escape(label)}</div><div class="big">([^<]*)</div>', page)
    assert found is not None, page
    return found.group(1)
