"""The web app's static files, served by kurz itself under content-hashed names.

Every file under kurz/web/static/ (kurz's own and the vendored ones) is read once, when
first asked for, and named by its content: `kurz.css` is served as
`/_/static/kurz.<hash>.css`. A name changes whenever its file does, so browsers may keep
each one for a year without ever holding a stale copy, and no build step makes the names.
Text files are also kept gzipped, for browsers that accept it.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Final

from fastapi import APIRouter, Request, Response

PREFIX: Final = "/_/static/"
_TYPES: Final = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
}
# Worth gzipping: text, and large enough that the header costs less than it saves.
_COMPRESSED = frozenset({".css", ".js", ".svg"})
_MIN_GZIP = 1_024
_FOREVER: Final = "public, max-age=31536000, immutable"
_BRIEFLY: Final = "public, max-age=3600"


@dataclass(frozen=True, slots=True)
class Asset:
    name: str  # its path under static/, e.g. "vendor/htmx/htmx.min.js"
    url: str  # /_/static/vendor/htmx/htmx.min.<hash>.js
    media_type: str
    body: bytes
    gzipped: bytes | None


def _hashed(name: str, body: bytes) -> str:
    digest = hashlib.sha256(body).hexdigest()[:12]
    stem, dot, suffix = name.rpartition(".")
    return f"{stem}.{digest}.{suffix}" if dot else f"{name}.{digest}"


def _walk(folder: Traversable, prefix: str = "") -> list[tuple[str, bytes]]:
    found: list[tuple[str, bytes]] = []
    for entry in folder.iterdir():
        if entry.is_dir():
            found += _walk(entry, f"{prefix}{entry.name}/")
        elif "." + entry.name.rpartition(".")[2] in _TYPES:
            found.append((prefix + entry.name, entry.read_bytes()))
    return found


class Assets:
    """Every static file by its plain name and by its hashed URL."""

    def __init__(self, found: list[tuple[str, bytes]]) -> None:
        self.by_name: dict[str, Asset] = {}
        self.by_url: dict[str, Asset] = {}
        self.plain: dict[str, Asset] = {}
        for name, body in found:
            suffix = "." + name.rpartition(".")[2]
            gzipped = None
            if suffix in _COMPRESSED and len(body) >= _MIN_GZIP:
                gzipped = gzip.compress(body, compresslevel=9, mtime=0)
            asset = Asset(name, PREFIX + _hashed(name, body), _TYPES[suffix], body, gzipped)
            self.by_name[name] = asset
            self.by_url[asset.url] = asset
            # Under its plain name too, kept briefly: for what cannot ask for the hashed
            # name (kurz.links.pages' password and preview pages sit below kurz.web).
            self.plain[PREFIX + name] = asset

    def url(self, name: str) -> str:
        """The address to put in a page for static/`name` (a KeyError names a typo)."""
        return self.by_name[name].url


@cache
def assets() -> Assets:
    return Assets(_walk(files("kurz.web").joinpath("static")))


def url(name: str) -> str:
    return assets().url(name)


router = APIRouter(include_in_schema=False)


@router.get(PREFIX + "{path:path}")
async def static_file(path: str, request: Request) -> Response:
    found = assets()
    asset = found.by_url.get(PREFIX + path)
    cache_control = _FOREVER
    if asset is None:
        asset = found.plain.get(PREFIX + path)
        cache_control = _BRIEFLY
    if asset is None:
        # An old hash (a page from before an upgrade) or a typo: nothing to keep.
        return Response(b"Not Found\n", 404, media_type="text/plain", headers=_NOT_KEPT)
    headers = {
        "Cache-Control": cache_control,
        "X-Content-Type-Options": "nosniff",
        "Vary": "Accept-Encoding",
    }
    body = asset.body
    if asset.gzipped is not None and _accepts_gzip(request.headers.get("accept-encoding", "")):
        body = asset.gzipped
        headers["Content-Encoding"] = "gzip"
    return Response(body, 200, headers=headers, media_type=asset.media_type)


_NOT_KEPT: Final = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def _accepts_gzip(header: str) -> bool:
    for part in header.lower().split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip() in {"gzip", "*"}:
            return params.replace(" ", "") not in {"q=0", "q=0.0", "q=0.00", "q=0.000"}
    return False
