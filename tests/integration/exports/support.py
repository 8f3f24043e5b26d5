"""Reading exports back: their lines, parsed and checked against the published schema."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from jsonschema import Draft202012Validator

from kurz.db import Database
from kurz.exports.models import LINE
from kurz.exports.queries import ROLLUPS

SCHEMA = Path(__file__).resolve().parents[3] / "docs" / "export.schema.json"
# What a `link` line holds beside what GET /api/v1/links/{code} answers.
EXTRA = {"type", "id", "owner", "default_domain", "visits", "password_hash", "deleted_at"}
Lines = list[dict[str, Any]]


@cache
def validator() -> Draft202012Validator:
    return Draft202012Validator(json.loads(SCHEMA.read_text()))


def parsed(body: bytes) -> Lines:
    """An export's lines, each checked against docs/export.schema.json (and read by
    the models it is made from); the file ends
    with a newline, and has its header first and its end line last."""
    assert body.endswith(b"\n")
    lines = [json.loads(line) for line in body[:-1].split(b"\n")]
    for line in lines:
        validator().validate(line)
        LINE.validate_python(line)
    assert lines[0]["type"] == "export"
    assert lines[-1]["type"] == "end"
    assert [line["type"] for line in lines[1:-1]].count("export") == 0
    return lines


def of_type(lines: Lines, kind: str) -> Lines:
    return [line for line in lines if line["type"] == kind]


def by_code(lines: Lines) -> dict[str, dict[str, Any]]:
    return {line["code"]: line for line in of_type(lines, "link")}


def statistics(lines: Lines) -> dict[str, list[tuple[Any, ...]]]:
    """Every statistics row of the export, by line type, as (code, *the row's values),
    each after its link's line."""
    seen: set[tuple[str, str]] = set()
    rows: dict[str, list[tuple[Any, ...]]] = {rollup.line: [] for rollup in ROLLUPS}
    for line in lines:
        if line["type"] == "link":
            seen.add((line["domain"], line["code"]))
        elif line["type"] in rows:
            assert (line["domain"], line["code"]) in seen, line
            rows[line["type"]] += [(line["code"], *row.values()) for row in line["rows"]]
    return rows


async def stored(db: Database, codes: dict[int, str]) -> dict[str, list[tuple[Any, ...]]]:
    """The rollup rows of the links `codes` names (by id), as `statistics` writes them."""
    found: dict[str, list[tuple[Any, ...]]] = {}
    async with db.read() as conn:
        for rollup in ROLLUPS:
            query = (
                sa.select(*rollup.columns())
                .where(rollup.table.c.link_id.in_(list(codes)))
                .order_by(rollup.table.c.link_id, *rollup.key)
            )
            found[rollup.line] = [
                (codes[row[0]], *map(_json, rollup.fields, row[1:]))
                for row in await conn.execute(query)
            ]
    return found


def _json(name: str, value: Any) -> Any:
    """A column's value as the export writes it."""
    if name == "day":
        return value.date().isoformat()
    if name == "hour":
        return value.isoformat().replace("+00:00", "Z")
    return value
