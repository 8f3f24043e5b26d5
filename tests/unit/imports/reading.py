"""Reading a file source in tests: its pages, its items, and files to read."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kurz.imports.kinds import KINDS
from kurz.imports.sources import Item, Opening, Page, Record, Source


def source(kind: str, path: Path, **settings: Any) -> Source:
    found = KINDS[kind]
    return found.open(Opening(found.settings.model_validate(settings), file=path))


async def pages(kind: str, path: Path, *, after: str | None = None, **settings: Any) -> list[Page]:
    opened = source(kind, path, **settings)
    try:
        return [page async for page in opened.pages(after)]
    finally:
        await opened.aclose()


async def pages_into(into: list[Page], kind: str, path: Path, **settings: Any) -> None:
    """Its pages into `into`, as they come: those read before an error are kept."""
    opened = source(kind, path, **settings)
    try:
        async for page in opened.pages(None):
            into.append(page)
    finally:
        await opened.aclose()


async def items(kind: str, path: Path, **settings: Any) -> list[Item]:
    return [item for page in await pages(kind, path, **settings) for item in page.items]


async def records(kind: str, path: Path, **settings: Any) -> list[Record]:
    read = await items(kind, path, **settings)
    assert all(isinstance(item, Record) for item in read), read
    return [item for item in read if isinstance(item, Record)]


def write(path: Path, rows: Sequence[str], *, end: str = "\r\n", bom: bool = False) -> Path:
    """A file of `rows` (lines already joined by their delimiter), UTF-8."""
    text = "".join(row + end for row in rows)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return path
