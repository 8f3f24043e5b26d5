"""The `kurz` command's entry point (pyproject.toml's script, and `python -m kurz`).

kurz.cli is imported with the cyclic collector off: importing makes tens of thousands
of objects (modules, classes, the command line's options) that live as long as the
process, and the collector walking them while they are made was about a quarter of
`kurz --help`'s CPU (docs/benchmarks.md, "Start-up"). They are frozen (out of the
collector's sight, as `kurz serve` freezes what it builds) and collection resumes
before the command runs.
"""

from __future__ import annotations

import gc


def main() -> None:
    gc.disable()
    try:
        from kurz.cli import main as run
    finally:
        gc.freeze()
        gc.enable()
    run()
