"""Each kurz package that declares `__all__` keeps it honest: sorted, each name once,
each name importable from the package, and every public name its __init__ imports
listed. Packages are found by walking the tree, so that a new one is checked too."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path
from types import ModuleType

import pytest

import kurz


def _packages() -> list[ModuleType]:
    found = [kurz]
    for info in pkgutil.walk_packages(kurz.__path__, "kurz."):
        if info.ispkg:
            found.append(importlib.import_module(info.name))
    return found


EXPORTING = [package for package in _packages() if "__all__" in vars(package)]


def isort_key(name: str) -> tuple[int, list[int | str]]:
    """The order ruff's RUF022 keeps `__all__` in (`ruff rule RUF022`), which
    `ruff check --fix` writes: CONSTANTS, then Classes, then the rest, each group in
    natural order (digits compared as numbers)."""
    group = 0 if len(name) > 1 and name.isupper() else 1 if name[:1].isupper() else 2
    parts: list[int | str] = [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]
    return group, parts


def imported_names(package: ModuleType) -> set[str]:
    """The names its __init__.py binds by importing them, private ones aside."""
    assert package.__file__ is not None
    tree = ast.parse(Path(package.__file__).read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            names.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.asname or alias.name.split(".")[0] for alias in node.names)
    return {name for name in names if not name.startswith("_")}


def test_the_packages_that_export_are_found() -> None:
    names = {package.__name__ for package in EXPORTING}
    assert {"kurz.cache", "kurz.ratelimit", "kurz.jobs", "kurz.idempotency", "kurz.db"} <= names


@pytest.mark.parametrize("package", EXPORTING, ids=lambda package: package.__name__)
def test_all_is_sorted_unique_importable_and_complete(package: ModuleType) -> None:
    exported = list(package.__all__)
    assert exported == sorted(exported, key=isort_key), "sort it: ruff check --fix"
    assert len(exported) == len(set(exported)), "a name is listed twice"
    for name in exported:
        namespace: dict[str, object] = {}
        exec(f"from {package.__name__} import {name}", namespace)  # noqa: S102
        assert name in namespace
    assert imported_names(package) <= set(exported), "imported, public, and not exported"


@pytest.mark.parametrize(
    ("names", "ordered"),
    [
        (["b", "A", "C_D"], ["C_D", "A", "b"]),
        (["x10", "x9", "X", "XY"], ["XY", "X", "x9", "x10"]),
        (["batch_id", "BatchQueue", "Agent"], ["Agent", "BatchQueue", "batch_id"]),
    ],
)
def test_the_sort_is_rufs(names: list[str], ordered: list[str]) -> None:
    assert sorted(names, key=isort_key) == ordered
