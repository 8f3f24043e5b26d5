"""One version: kurz.__version__, printed by `kurz --version` and read by the build."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

import kurz
from kurz.cli import app

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_flag_prints_the_package_version(flag: str) -> None:
    result = CliRunner().invoke(app, [flag])

    assert result.exit_code == 0
    assert result.output == f"kurz {kurz.__version__}\n"


def test_version_as_a_command_line_runs_it() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kurz", "--version"], capture_output=True, text=True, check=True
    )

    assert done.stdout == f"kurz {kurz.__version__}\n"
    assert done.stderr == ""


def test_the_build_reads_the_version_from_the_package() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())

    assert "version" not in project["project"]
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "kurz.__version__"}


def test_the_license_is_shipped_and_says_mit() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())

    assert project["project"]["license"] == "MIT"
    assert project["project"]["license-files"] == ["LICENSE"]
    assert (
        (ROOT / "LICENSE")
        .read_text()
        .startswith("MIT License\n\nCopyright (c) 2026 the kurz authors\n")
    )
