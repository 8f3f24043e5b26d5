"""kurz.links.qr: QR codes a real decoder reads back, drawn as asked, and made once."""

from __future__ import annotations

import io
from typing import get_args

import pytest
from PIL import Image, ImageOps

from kurz.links.qr import MAX_SIZE, MIN_SIZE, Ecc, QrCodes, QrOptions, make
from tests.qrcodes import SVG, modules_across, parse, read_png, read_svg, svg_modules, version_of

URL = "https://kurz.test/abcdefg"


@pytest.mark.parametrize("ecc", get_args(Ecc))
def test_a_png_reads_back_as_the_url_at_the_error_correction_asked(ecc: Ecc) -> None:
    found = read_png(make(URL, QrOptions(format="png", ecc=ecc)))
    assert (found.text, found.ec_level) == (URL, ecc)


@pytest.mark.parametrize("ecc", get_args(Ecc))
def test_an_svg_reads_back_as_the_url_at_the_error_correction_asked(ecc: Ecc) -> None:
    found = read_svg(make(URL, QrOptions(format="svg", ecc=ecc)))
    assert (found.text, found.ec_level) == (URL, ecc)


def test_more_error_correction_needs_more_modules_for_the_same_url() -> None:
    versions = [
        version_of(read_png(make(URL, QrOptions(format="png", ecc=ecc)))) for ecc in get_args(Ecc)
    ]
    assert versions == sorted(versions)
    assert versions[0] < versions[-1]


def test_the_svg_is_small_well_formed_and_has_nothing_a_csp_governs() -> None:
    body = make(URL, QrOptions(format="svg", size=300))
    assert body.startswith(b"<svg ")  # no XML declaration
    root = parse(body)
    assert root.tag == f"{SVG}svg"
    assert (root.attrib["width"], root.attrib["height"]) == ("300", "300")
    assert {element.tag for element in root.iter()} == {f"{SVG}svg", f"{SVG}path"}
    for element in root.iter():
        assert not {"style", "class", "href", "onload"} & set(element.attrib), element.attrib
    assert len(body) < 2_000


@pytest.mark.parametrize("size", [MIN_SIZE, 100, 512, 1000, MAX_SIZE])
def test_size_is_the_svgs_width_and_the_widest_png_of_whole_pixels_per_module(
    size: int,
) -> None:
    root = parse(make(URL, QrOptions(format="svg", size=size)))
    assert root.attrib["width"] == root.attrib["height"] == str(size)

    png = make(URL, QrOptions(format="png", size=size))
    width, height = Image.open(io.BytesIO(png)).size
    across = modules_across(read_png(png)) + 2 * 4
    assert width == height == across * max(1, size // across)
    assert size - across < width <= size


@pytest.mark.parametrize("margin", [0, 1, 4, 16])
def test_margin_is_the_quiet_zone_in_modules(margin: int) -> None:
    png = make(URL, QrOptions(format="png", size=1000, margin=margin))
    image = Image.open(io.BytesIO(png))
    found = read_png(png)
    scale = image.size[0] // (modules_across(found) + 2 * margin)
    dark = ImageOps.invert(image.convert("L")).getbbox()
    assert dark is not None
    left, top, right, bottom = dark
    quiet = margin * scale
    assert (left, top, image.size[0] - right, image.size[1] - bottom) == (quiet,) * 4

    rows = svg_modules(make(URL, QrOptions(format="svg", margin=margin)))
    assert len(rows) == modules_across(found) + 2 * margin
    assert not any(dark for row in rows[:margin] for dark in row)
    assert not any(any(row[:margin]) for row in rows)
    # The top-left finder pattern's top edge, right after the quiet zone.
    assert all(rows[margin][margin : margin + 7])


@pytest.mark.parametrize(
    "options",
    [
        {"format": "gif"},
        {"size": MIN_SIZE - 1},
        {"size": MAX_SIZE + 1},
        {"margin": -1},
        {"margin": 17},
        {"ecc": "X"},
    ],
)
def test_options_out_of_range_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=next(iter(options))):
        QrOptions(**options)  # type: ignore[arg-type]


class CountingMaker:
    """segno's drawing, counted."""

    def __init__(self) -> None:
        self.made: list[tuple[str, QrOptions]] = []

    def __call__(self, url: str, options: QrOptions) -> bytes:
        self.made.append((url, options))
        return make(url, options)


async def test_an_image_is_made_once_while_it_is_kept() -> None:
    maker = CountingMaker()
    codes = QrCodes(maker=maker)
    png = QrOptions(format="png")
    first = await codes.image(URL, png)
    again = await codes.image(URL, QrOptions(format="png"))
    assert again.body is first.body
    assert (again.media_type, again.digest) == ("image/png", first.digest)
    assert maker.made == [(URL, png)]

    # Any other option, or another URL, is another image.
    others = [QrOptions(), QrOptions(format="png", size=256), QrOptions(format="png", ecc="H")]
    for options in others:
        assert (await codes.image(URL, options)).digest != first.digest
    other_url = await codes.image("https://go.example/abcdefg", png)
    assert other_url.digest != first.digest
    assert len(maker.made) == 5
    assert read_png(other_url.body).text == "https://go.example/abcdefg"


async def test_the_least_recently_used_image_goes_first() -> None:
    maker = CountingMaker()
    codes = QrCodes(maker=maker, max_entries=2)
    small, large = QrOptions(size=100), QrOptions(size=200)
    await codes.image(URL, small)
    await codes.image(URL, large)
    await codes.image(URL, small)  # used lately: kept
    await codes.image(URL, QrOptions(size=300))  # the large one goes
    await codes.image(URL, small)
    assert [options.size for _, options in maker.made] == [100, 200, 300]
    await codes.image(URL, large)
    assert [options.size for _, options in maker.made] == [100, 200, 300, 200]


async def test_images_are_kept_within_the_bytes_allowed() -> None:
    maker = CountingMaker()
    one = len(make(URL, QrOptions()))
    codes = QrCodes(maker=maker, max_bytes=one * 2)
    for size in (100, 200, 300):
        await codes.image(URL, QrOptions(size=size))
    await codes.image(URL, QrOptions(size=100))
    assert [options.size for _, options in maker.made] == [100, 200, 300, 100]
