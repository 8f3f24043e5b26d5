"""The guided tour (docs/README.md, docs/designs/) holds together: every design has its
page, each page its sections, its links to the code, the decision, the measurement and
the test that shows how it fails; every command a page names is a make target; every
figure a page shows is drawn by a command the page names (bench/figures.py); every ADR
is linked from a design page; and docs/README.md maps every page of docs/."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
DESIGNS = DOCS / "designs"
LAB = DOCS / "lab"

# One page per design kurz is made of (issue 25).
PAGES = (
    "url-shortener",
    "rate-limiter",
    "idempotency",
    "caching-lru-tinylfu",
    "consistent-hashing",
    "tiered-cache",
    "job-scheduler",
    "click-pipeline",
    "indexing",
    "locking",
    "isolation",
    "consistency-cap",
    "rest-and-grpc",
    "sessions-csrf",
    "redirect-pipeline",
    "webhook-delivery",
    "search",
)
SECTIONS = (
    "The question",
    "The options",
    "What kurz chose",
    "Where the code is",
    "The measurement",
    "What breaks it",
    "Past one machine",
)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FIGURE = re.compile(r"!\[[^\]]*\]\(([^)\s]+\.svg)\)")
COMMAND = re.compile(r"`make ([a-z][a-z0-9-]*)`")


def design_pages() -> list[Path]:
    return [DESIGNS / f"{name}.md" for name in PAGES]


def shown_pages() -> list[Path]:
    """The pages whose figures and commands are checked: the designs and the labs."""
    return design_pages() + sorted(LAB.glob("*.md"))


def links(page: Path) -> Iterator[str]:
    """The relative links of a page, without their anchors."""
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if "://" in target or target.startswith(("#", "mailto:")):
            continue
        yield target.split("#", 1)[0]


@cache
def makefile_targets() -> dict[str, tuple[list[str], list[str]]]:
    """{target: (prerequisites, recipe lines)} of the Makefile."""
    targets: dict[str, tuple[list[str], list[str]]] = {}
    current: str | None = None
    for line in (ROOT / "Makefile").read_text(encoding="utf-8").splitlines():
        rule = re.match(r"^([a-z][a-z0-9-]*):(?!=)\s*([^#]*)", line)
        if rule:
            current = rule.group(1)
            targets[current] = (rule.group(2).split(), [])
        elif line.startswith("\t") and current is not None:
            targets[current][1].append(line)
        elif line.strip() and not line.startswith("#"):
            current = None
    return targets


def bench_file(module: str) -> Path | None:
    path = ROOT / Path(*module.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@cache
def drawn_by_module(module: str) -> frozenset[str]:
    """The figures (paths under docs/) a bench module saves, itself or through the
    bench modules it imports: the literal of each `save(fig, "...")` call."""
    seen: set[str] = set()
    figures: set[str] = set()
    queue = [module]
    while queue:
        name = queue.pop()
        if name in seen:
            continue
        seen.add(name)
        path = bench_file(name)
        if path is None:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                literal = node.args[1] if len(node.args) > 1 else None
                if (called == "save" and isinstance(literal, ast.Constant)
                        and isinstance(literal.value, str)):  # fmt: skip
                    figures.add(literal.value)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module.startswith("bench"):
                    queue.append(node.module)
                    queue.extend(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                queue.extend(a.name for a in node.names if a.name.startswith("bench"))
    return frozenset(figures)


def drawn_by_target(target: str, seen: frozenset[str] = frozenset()) -> frozenset[str]:
    """The figures `make TARGET` draws: its recipe's `python -m bench...` modules', and
    its prerequisites' (`make lab` runs every lab)."""
    prerequisites, recipe = makefile_targets().get(target, ([], []))
    figures: set[str] = set()
    for line in recipe:
        for module in re.findall(r"-m (bench(?:\.[a-z_]+)+)", line):
            figures |= drawn_by_module(module)
    for other in prerequisites:
        if other in makefile_targets() and other not in seen:
            figures |= drawn_by_target(other, seen | {target})
    return frozenset(figures)


@pytest.mark.parametrize("page", design_pages(), ids=PAGES)
def test_each_design_has_its_page_with_every_section(page: Path) -> None:
    assert page.is_file(), f"{page.relative_to(ROOT)} is missing"
    headings = re.findall(r"^## (.+)$", page.read_text(encoding="utf-8"), re.MULTILINE)
    missing = [section for section in SECTIONS if not any(h.startswith(section) for h in headings)]
    assert missing == [], f"{page.name} lacks {missing}"


@pytest.mark.parametrize("page", design_pages(), ids=PAGES)
def test_each_design_links_its_code_decision_figure_and_failure_test(page: Path) -> None:
    targets = list(links(page))
    assert any("src/kurz/" in t for t in targets), "no link to the code"
    assert any("decisions/" in t for t in targets), "no link to a decision (ADR)"
    assert any(t.startswith("../../tests/") for t in targets), "no link to a test"
    assert FIGURE.search(page.read_text(encoding="utf-8")), "no figure"
    assert COMMAND.search(page.read_text(encoding="utf-8")), "no make command"


@pytest.mark.parametrize("page", shown_pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_every_command_a_page_names_is_a_make_target(page: Path) -> None:
    named = set(COMMAND.findall(page.read_text(encoding="utf-8")))
    assert named - set(makefile_targets()) == set()


@pytest.mark.parametrize("page", shown_pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_every_figure_is_drawn_by_a_command_its_page_names(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    commands = set(COMMAND.findall(text))
    drawn: set[str] = set()
    for command in commands:
        drawn |= drawn_by_target(command)
    for figure in FIGURE.findall(text):
        path = (page.parent / figure).resolve()
        assert path.is_file(), f"{figure} is not committed"
        under_docs = path.relative_to(DOCS).as_posix()
        assert under_docs in drawn, (
            f"{page.name} shows {figure}, which none of its commands "
            f"({', '.join(sorted(commands)) or 'none'}) draws"
        )


def test_every_lab_page_has_a_figure() -> None:
    bare = [p.name for p in sorted(LAB.glob("*.md")) if not FIGURE.search(p.read_text())]
    assert bare == []


def test_every_adr_is_linked_from_a_design_page() -> None:
    linked = {Path(t).name for page in design_pages() if page.is_file() for t in links(page)}
    adrs = {adr.name for adr in (DOCS / "decisions").glob("[0-9][0-9][0-9][0-9]-*.md")}
    assert adrs - linked == set()


def test_every_relative_link_of_the_tour_resolves() -> None:
    broken = []
    for page in [DOCS / "README.md", *design_pages(), *sorted(LAB.glob("*.md"))]:
        if not page.is_file():
            continue
        for target in links(page):
            if target and not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert broken == []


def test_the_map_links_every_page_of_docs() -> None:
    mapped = {(DOCS / t).resolve() for t in links(DOCS / "README.md")}
    pages = {p.resolve() for p in DOCS.rglob("*.md") if p != DOCS / "README.md"}
    assert sorted(str(p.relative_to(DOCS)) for p in pages - mapped) == []


def test_the_readme_links_the_map() -> None:
    assert "docs/README.md" in set(links(ROOT / "README.md"))
