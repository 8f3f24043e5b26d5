"""`make clean` and `make clean-data`, run by make on a copy of the Makefile: the local
data in var/ goes only when asked for, and only after a yes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

MAKEFILE = Path(__file__).parents[2] / "Makefile"


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    shutil.copy(MAKEFILE, tmp_path / "Makefile")
    for folder in ("var", ".venv/bin", ".mypy_cache", ".pytest_cache", "src/kurz/__pycache__"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "var" / "kurz.db").write_text("every link")
    return tmp_path


def make(cwd: Path, *args: str, answer: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=cwd,
        input=answer,
        capture_output=True,
        text=True,
        check=False,
    )


def test_clean_keeps_var(checkout: Path) -> None:
    done = make(checkout, "clean")
    assert done.returncode == 0, done.stderr
    assert sorted(path.name for path in checkout.iterdir()) == ["Makefile", "src", "var"]
    assert not (checkout / "src" / "kurz" / "__pycache__").exists()
    assert (checkout / "var" / "kurz.db").read_text() == "every link"


def test_clean_data_asks_first(checkout: Path) -> None:
    # Not a terminal and no CONFIRM=yes: nobody was asked, nothing goes.
    refused = make(checkout, "clean-data", answer="yes\n")
    assert refused.returncode != 0
    assert "CONFIRM=yes" in refused.stdout
    assert (checkout / "var" / "kurz.db").exists()

    done = make(checkout, "clean-data", "CONFIRM=yes")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "deleted var/\n"
    assert not (checkout / "var").exists()
    assert make(checkout, "clean-data").stdout == "no var/ here: nothing to delete\n"


def on_a_terminal(cwd: Path, answer: str) -> subprocess.CompletedProcess[str]:
    """`make clean-data` on a pseudo-terminal (script), typing `answer`."""
    return subprocess.run(
        ["script", "-qec", "make --no-print-directory clean-data", "/dev/null"],
        cwd=cwd,
        input=answer,
        capture_output=True,
        text=True,
        check=False,
    )


def test_clean_data_on_a_terminal_deletes_only_after_yes(checkout: Path) -> None:
    if shutil.which("script") is None:
        pytest.skip("script (util-linux) is not installed, to give make a terminal")
    kept = on_a_terminal(checkout, "no\n")
    assert kept.returncode != 0
    assert "Delete var/" in kept.stdout
    assert "kept var/" in kept.stdout
    assert (checkout / "var" / "kurz.db").exists()

    deleted = on_a_terminal(checkout, "yes\n")
    assert deleted.returncode == 0, deleted.stdout
    assert "deleted var/" in deleted.stdout
    assert not (checkout / "var").exists()
