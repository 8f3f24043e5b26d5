"""QR codes read back by a real decoder (zxing-cpp): a PNG through Pillow, one of segno's
SVGs through its path, drawn here module by module."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET

import zxingcpp
from PIL import Image

SVG = "{http://www.w3.org/2000/svg}"


def read_png(body: bytes) -> zxingcpp.Barcode:
    """The one QR code in a PNG, as zxing-cpp reads it."""
    [found] = zxingcpp.read_barcodes(Image.open(io.BytesIO(body)))
    assert found.format == zxingcpp.QRCode
    return found


def parse(svg: bytes) -> ET.Element:
    """An SVG of kurz's own making (nothing untrusted) as XML; fails if it is not."""
    return ET.fromstring(svg)  # noqa: S314


def svg_modules(body: bytes) -> list[list[bool]]:
    """The dark modules of one of segno's SVGs, row by row, from its path: an `M x y`,
    then runs of `h` (dark) and `m` (moves) a module high."""
    root = parse(body)
    width, height = (int(n) for n in root.attrib["viewBox"].split()[2:])
    [path] = [p for p in root.iter(f"{SVG}path") if p.attrib.get("stroke") == "#000"]
    d = path.attrib["d"]
    moves = re.findall(r"([Mmh])(-?[\d.]+)(?: (-?[\d.]+))?", d)
    assert "".join(m[0] + " ".join(filter(None, m[1:])) for m in moves) == d
    rows = [[False] * width for _ in range(height)]
    x = y = 0.0
    for kind, first, second in moves:
        if kind == "M":
            x, y = float(first), float(second)
        elif kind == "m":
            x, y = x + float(first), y + float(second)
        else:
            for column in range(int(x), int(x + float(first))):
                rows[int(y)][column] = True
            x += float(first)
    return rows


def read_svg(body: bytes, scale: int = 4) -> zxingcpp.Barcode:
    """The one QR code in an SVG, drawn at `scale` pixels a module and read by zxing-cpp."""
    rows = svg_modules(body)
    pixels = bytearray()
    for row in rows:
        line = b"".join(b"\x00" * scale if dark else b"\xff" * scale for dark in row)
        pixels += line * scale
    shape = (len(rows) * scale, len(rows[0]) * scale)
    [found] = zxingcpp.read_barcodes(memoryview(bytes(pixels)).cast("B", shape))
    return found


def version_of(found: zxingcpp.Barcode) -> int:
    extra = found.extra
    assert isinstance(extra, dict)
    return int(extra["Version"])


def modules_across(found: zxingcpp.Barcode) -> int:
    """A QR code's width in modules, without its quiet zone (ISO/IEC 18004)."""
    return 17 + 4 * version_of(found)
