"""Lab 4: what kurz does when each dependency fails, as its tests saw it.

Each row of docs/lab/cap.md is backed by a test that starts the real process (a
Redis node, all of Redis, PostgreSQL, a worker), stops it under a running kurz,
and asserts what keeps working, what fails and how, and that nothing is lost. This
script runs those tests and tabulates what they noted (tests.e2e.support.figure):
the page's figures are the tests' own observations, from this run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import figures
from bench.harness import command_line
from bench.lab.page import header, postgres_version, publish, table

ROOT = Path(__file__).resolve().parents[2]
# In the page's order: the failure, and the tests that stop it.
BACKING = {
    "a cache node": [
        "tests/e2e/test_cache_tiers.py::"
        "test_a_cache_node_killed_under_load_fails_no_redirect_and_rejoins",
    ],
    "all of Redis": [
        "tests/e2e/test_failures.py::"
        "test_with_all_of_redis_down_everything_answers_from_process_and_database",
    ],
    "PostgreSQL": [
        "tests/e2e/test_failures.py::"
        "test_with_postgresql_down_cached_redirects_answer_and_the_rest_fails_fast",
    ],
    "a worker": [
        "tests/e2e/test_job_workers.py::test_a_job_whose_worker_is_killed_is_finished_by_another",
        "tests/e2e/test_click_counts.py::test_stream_counts_every_click_once_with_a_worker_killed",
    ],
}


def run_tests() -> list[dict[str, str]]:
    """Run the backing tests (every one must pass) and return what they noted."""
    with tempfile.TemporaryDirectory(prefix="kurz-lab-cap-") as folder:
        notes = Path(folder) / "figures.jsonl"
        env = {**os.environ, "KURZ_LAB_FIGURES": str(notes), "CI": "true"}
        tests = [test for tests in BACKING.values() for test in tests]
        argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests]
        done = subprocess.run(argv, cwd=ROOT, env=env, check=False)
        if done.returncode != 0:
            raise SystemExit("a backing test failed: the page is not written")
        return [json.loads(line) for line in notes.read_text().splitlines()]


def report(notes: list[dict[str, str]], argv: Sequence[str], postgres: str) -> list[str]:
    rows = []
    for failure, tests in BACKING.items():
        for note in (n for n in notes if n["failure"] == failure):
            rows.append([failure, note["what"], str(note["value"])])
        missing = not any(n["failure"] == failure for n in notes)
        if missing:
            raise SystemExit(f"no test noted anything for {failure!r} ({tests})")
    return [
        *header(command_line("lab-cap", "bench.lab.cap", argv), postgres=postgres),
        *table(["stopped", "observed", "what the test saw"], rows),
    ]


def outcome(value: str) -> str:
    """What a note says happened: refused (a 503 problem) or served/counted."""
    return "refused (503, at once)" if re.match(r"503\b", value) else "kept working"


def outcomes_figure(notes: list[dict[str, str]]) -> Any:
    """Each observation of the backing tests, grouped by what was stopped, coloured by
    whether the request was served (or the click counted) or refused at once."""
    rows = [n for failure in BACKING for n in notes if n["failure"] == failure][::-1]
    colors = {"kept working": figures.COLORS[2], "refused (503, at once)": figures.COLORS[1]}
    fig, ax = figures.new(
        "A dependency stopped: what the e2e tests saw",
        "", "", width=6.0, height=0.32 * len(rows) + 1.2,
    )  # fmt: skip
    for y, note in enumerate(rows):
        kind = outcome(str(note["value"]))
        ax.barh(y, 1, color=colors[kind], height=0.8)
        said = f"{note['what']}: {note['value']}"
        ax.text(0.02, y, said if len(said) <= 42 else said[:41] + "…", va="center",
                fontsize=7.5, color="white")  # fmt: skip
    ax.set_yticks(
        list(range(len(rows))),
        [n["failure"] if i + 1 == len(rows) or rows[i + 1]["failure"] != n["failure"] else ""
         for i, n in enumerate(rows)],
    )  # fmt: skip
    ax.set_xticks([])
    ax.set_xlim(0, 1)
    ax.grid(False)
    handles = [figures_patch(color, label) for label, color in colors.items()]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(0, -0.02), ncol=2, fontsize=7)
    ax.set_ylabel("stopped")
    return fig


def figures_patch(color: str, label: str) -> Any:
    from matplotlib.patches import Patch

    return Patch(color=color, label=label)


def recovery_figure(notes: list[dict[str, str]]) -> Any:
    """Seconds from the dependency's restart (or the worker's kill, its lease) to the
    tests' recovery mark, as each noted it."""
    fig, ax = figures.new(
        "Recovery after each failure, as its e2e test timed it (loaded machine)",
        "seconds from the restart (a worker: from its lease's end) to recovery", "",
    )  # fmt: skip
    marks = []
    for failure in BACKING:
        for note in notes:
            wanted = note["what"] in ("recovery", "its job")
            seconds = re.search(r"([0-9]+(?:\.[0-9]+)?) s after|within ([0-9.]+) s",
                                str(note["value"]))  # fmt: skip
            if note["failure"] == failure and wanted and seconds:
                number = float(seconds.group(1) or seconds.group(2))
                marks.append((f"{failure}: {note['what']}", number))
    marks.reverse()
    ax.barh(range(len(marks)), [m[1] for m in marks])
    ax.set_yticks(list(range(len(marks))), [m[0] for m in marks], fontsize=7)
    for y, (_, number) in enumerate(marks):
        ax.text(number, y, f" {number:g} s", va="center", fontsize=7)
    return fig


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--write", action="store_true", help="put the table into docs/lab/cap.md")
    opts = parser.parse_args(argv)
    postgres = asyncio.run(postgres_version())
    notes = run_tests()
    shown = [arg for arg in (argv if argv is not None else sys.argv[1:]) if arg != "--write"]
    publish("cap.md", report(notes, shown, postgres), write=opts.write)
    figures.save(outcomes_figure(notes), "lab/figures/cap-outcomes.svg")
    figures.save(outcomes_figure(notes), "designs/figures/cap-outcomes.svg")
    figures.save(recovery_figure(notes), "lab/figures/cap-recovery.svg")
    figures.save(recovery_figure(notes), "designs/figures/cap-recovery.svg")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
