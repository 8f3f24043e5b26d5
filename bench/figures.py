"""The figures of docs/: SVG drawn with matplotlib by the command that measures them.

A benchmark or lab script that has just measured something draws it here and saves it
beside the page that shows it:

    from bench import figures

    fig, ax = figures.new("Refusals against the policy's bound", "seconds", "requests")
    ax.plot(times, allowed, label="allowed")
    figures.save(fig, "designs/figures/ratelimit-decisions.svg")

`save` takes the path under docs/ as a literal string: tests/unit/test_docs_map.py
reads the calls to find which script makes which figure, and checks that every figure
a page shows is made by a command the page names. The SVG is written the same way for
the same numbers (no date, a fixed id salt), so a rerun that measured the same changes
no byte; the text is drawn as paths, so any Markdown viewer shows it as drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DOCS = Path(__file__).resolve().parents[1] / "docs"
# One palette for every figure: kurz's choices first, what they are compared with after.
COLORS = ("#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#57606a")


def new(title: str, xlabel: str, ylabel: str, *, width: float = 7.0, height: float = 3.6
        ) -> tuple[Figure, Axes]:  # fmt: skip
    """A figure with one set of axes, titled and labelled, in the house style."""
    fig, ax = grid(1, 1, width=width, height=height)
    ax.set_title(title, loc="left", fontsize=11)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return fig, ax


def grid(rows: int, cols: int, *, width: float = 7.0, height: float = 3.6) -> tuple[Figure, Any]:
    """A figure of rows by cols axes (matplotlib's subplots), in the house style."""
    import matplotlib

    matplotlib.use("svg")
    from cycler import cycler
    from matplotlib import pyplot

    pyplot.rcParams.update(
        {
            "axes.prop_cycle": cycler(color=COLORS),
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "font.size": 9,
            "legend.frameon": False,
            "svg.hashsalt": "kurz",
            "svg.fonttype": "path",
        }
    )
    return pyplot.subplots(rows, cols, figsize=(width, height), layout="constrained")


def save(fig: Figure, where: str) -> Path:
    """Write `fig` to docs/`where` (an .svg path under docs/, given as a literal) and
    close it; returns the path written."""
    from matplotlib import pyplot

    if not where.endswith(".svg") or where.startswith("/") or ".." in where:
        raise ValueError(f"a figure is an .svg under docs/, not {where!r}")
    path = DOCS / where
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="svg", metadata={"Date": None, "Creator": "kurz bench/figures.py"})
    pyplot.close(fig)
    print(f"figure: docs/{where}")
    return path
