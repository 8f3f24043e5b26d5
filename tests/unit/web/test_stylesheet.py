"""kurz.css is put together from sections that helpers append and the lead merges: each
must close every block it opens, or the sections after it land inside its @media."""

from __future__ import annotations

import re
from importlib.resources import files

COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
SECTION = re.compile(r"^/\* (.+?)(?: \*/)?$", re.MULTILINE)


def stylesheet() -> str:
    return files("kurz.web").joinpath("static", "kurz.css").read_text()


def depth_at(css: str, end: int) -> int:
    """How many blocks are open at `end` (comments skipped); never below zero."""
    depth = 0
    for char in COMMENT.sub("", css[:end]):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            assert depth >= 0, "kurz.css closes a block it never opened"
    return depth


def test_every_block_is_closed() -> None:
    css = stylesheet()
    assert depth_at(css, len(css)) == 0


def test_every_section_starts_outside_any_block() -> None:
    css = stylesheet()
    sections = list(SECTION.finditer(css))
    assert len(sections) > 1
    inside = [match.group(1) for match in sections if depth_at(css, match.start()) != 0]
    assert not inside, f"sections that start inside a block (an unclosed @media?): {inside}"
