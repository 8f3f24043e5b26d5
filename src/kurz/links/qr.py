"""QR codes of short URLs, made by segno and kept in an in-process LRU.

A link's short URL never changes for its code, so an image, once made, stays right for
as long as it is kept: a page that shows a link's QR code again and again makes it once.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

import segno

from kurz.cache import LRUCache

Format = Literal["svg", "png"]
Ecc = Literal["L", "M", "Q", "H"]

MIN_SIZE: Final = 64
MAX_SIZE: Final = 2048
DEFAULT_SIZE: Final = 512
MAX_MARGIN: Final = 16
# The quiet zone ISO/IEC 18004 asks of a QR code, in modules.
DEFAULT_MARGIN: Final = 4
MEDIA_TYPES: Final[dict[Format, str]] = {"svg": "image/svg+xml", "png": "image/png"}


@dataclass(frozen=True, slots=True)
class QrOptions:
    """How a QR code is drawn: `size` is the image's width in pixels (a PNG's at most:
    whole pixels per module), `margin` the quiet zone in modules, `ecc` the error
    correction level, exactly (segno would otherwise raise it where that costs no room)."""

    format: Format = "svg"
    size: int = DEFAULT_SIZE
    margin: int = DEFAULT_MARGIN
    ecc: Ecc = "M"

    def __post_init__(self) -> None:
        if self.format not in MEDIA_TYPES:
            raise ValueError(f"format must be svg or png, not {self.format!r}")
        if not MIN_SIZE <= self.size <= MAX_SIZE:
            raise ValueError(f"size must be from {MIN_SIZE} to {MAX_SIZE} pixels")
        if not 0 <= self.margin <= MAX_MARGIN:
            raise ValueError(f"margin must be from 0 to {MAX_MARGIN} modules")
        if self.ecc not in ("L", "M", "Q", "H"):
            raise ValueError(f"ecc must be L, M, Q or H, not {self.ecc!r}")


@dataclass(frozen=True, slots=True)
class QrImage:
    body: bytes
    media_type: str
    # A hash of `body`, in hex: an entity tag for it.
    digest: str


# What makes an image's bytes: `make` below, or a test's wrapper of it.
Maker = Callable[[str, QrOptions], bytes]


def make(url: str, options: QrOptions) -> bytes:
    """The QR code of `url`, drawn as `options` say."""
    # make_qr: never a Micro QR code, which phone cameras do not read.
    code = segno.make_qr(url, error=options.ecc, boost_error=False)
    out = io.BytesIO()
    if options.format == "png":
        # Whole pixels per module keep every edge sharp for a camera.
        modules = code.symbol_size(scale=1, border=options.margin)[0]
        code.save(out, kind="png", scale=max(1, options.size // modules), border=options.margin)
        return out.getvalue()
    # No XML declaration, classes or style: only geometry and fill/stroke attributes,
    # which a Content-Security-Policy does not govern. A white background keeps it
    # readable on a dark page.
    code.save(
        out,
        kind="svg",
        border=options.margin,
        xmldecl=False,
        svgclass=None,
        lineclass=None,
        omitsize=True,
        light="#fff",
        nl=False,
    )
    # segno's viewBox counts modules; the width and height say how large to show them.
    sized = f'<svg width="{options.size}" height="{options.size}" '.encode()
    return out.getvalue().replace(b"<svg ", sized, 1)


class QrCodes:
    """QR codes of short URLs, each made once while it is kept: the least recently used
    go first, past `max_entries` images or `max_bytes` of them."""

    def __init__(
        self, *, maker: Maker = make, max_entries: int = 1024, max_bytes: int = 16 * 2**20
    ) -> None:
        self._make = maker
        self._kept: LRUCache[tuple[str, QrOptions], QrImage] = LRUCache(
            max_entries, max_bytes=max_bytes, sizeof=lambda image: len(image.body)
        )

    async def image(self, url: str, options: QrOptions) -> QrImage:
        key = (url, options)
        kept = self._kept.get(key)
        if kept is not None:
            return kept
        # A large PNG takes milliseconds of pure Python: off the event loop, so that
        # redirects go on meanwhile.
        body = await asyncio.to_thread(self._make, url, options)
        image = QrImage(
            body, MEDIA_TYPES[options.format], hashlib.blake2b(body, digest_size=16).hexdigest()
        )
        self._kept.put(key, image)
        return image
