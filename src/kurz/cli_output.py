"""What the `kurz` commands print: tables for a person, JSON for a program (their
errors: kurz.cli_settings.fail and usage).

`--json` prints what the API renders for the same object: a listing one object a line
(JSON Lines, as `kurz export` writes), a single object (show, stats) one document.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

import typer
from pydantic import BaseModel, TypeAdapter
from rich.console import Console

# On a pipe or in a file nothing wraps: a row stays one line, a URL whole, for grep and
# cut. Rich would otherwise cut to 80 columns (or the terminal's, when stdin is one).
UNBOUNDED = 100_000

JSON_HELP = "Print JSON, as the API renders it: a listing one object a line (JSON Lines)."

err = Console(stderr=True)


def console() -> Console:
    """Standard output: as wide as the terminal, or unbounded when it is none."""
    return Console(width=None if sys.stdout.isatty() else UNBOUNDED)


def document(value: BaseModel | Any) -> None:
    """One object as the API's JSON answer (field aliases such as stats' `from`); a
    dataclass (a job, which no API renders) as pydantic would render it."""
    if isinstance(value, BaseModel):
        typer.echo(value.model_dump_json(by_alias=True))
    else:
        typer.echo(TypeAdapter(type(value)).dump_json(value, by_alias=True).decode())


def lines(values: Iterable[BaseModel | Any]) -> None:
    """A listing as JSON Lines, each object as the API renders it."""
    for value in values:
        document(value)


def said(message: str) -> None:
    """A line for the person on stderr, kept whole."""
    err.print(message, highlight=False, markup=False, soft_wrap=True)
