"""constraints.txt pins every requirement pyproject.toml names, at a version the
requirement allows: a dependency added without `make constraints` fails here."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def _name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_requirement_is_pinned_within_its_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    named = [Requirement(text) for text in project["dependencies"]]
    for requirements in project["optional-dependencies"].values():
        named += [Requirement(text) for text in requirements]
    pins = dict(
        line.split("==")
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if line and not line.startswith("#")
    )

    unpinned = [r.name for r in named if r.name != "kurz" and _name(r.name) not in pins]
    outside = [
        f"{r} (pinned {pins[_name(r.name)]})"
        for r in named
        if _name(r.name) in pins and not r.specifier.contains(pins[_name(r.name)], prereleases=True)
    ]

    assert unpinned == []
    assert outside == []
