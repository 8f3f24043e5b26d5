"""The published schema of the kurz format is the one the code writes by."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from kurz.exports.models import LINE, ROWS_PER_LINE, ClicksDailyLine, json_schema

SCHEMA = Path(__file__).resolve().parents[3] / "docs" / "export.schema.json"


def test_docs_export_schema_json_is_current() -> None:
    written = json.loads(SCHEMA.read_text())
    assert written == json_schema(), (
        "docs/export.schema.json is stale: write it again with\n"
        "python -c 'import json; from kurz.exports.models import json_schema; "
        "print(json.dumps(json_schema(), indent=2))' > docs/export.schema.json"
    )
    Draft202012Validator.check_schema(written)


def test_a_line_is_told_by_its_type_and_holds_nothing_else() -> None:
    validator = Draft202012Validator(json_schema())
    day = {"day": "2026-01-01", "clicks": 3, "uniques": 2, "bot_clicks": 1}
    line = {"type": "clicks_daily", "domain": "s.example", "default_domain": True,
            "code": "abc", "rows": [day]}  # fmt: skip
    validator.validate(line)
    parsed = LINE.validate_python(line)
    assert isinstance(parsed, ClicksDailyLine)
    assert parsed.rows[0].clicks == 3
    for wrong in [
        {**line, "type": "clicks_weekly"},
        {**line, "extra": 1},
        {**line, "rows": []},
        {**line, "rows": [day] * (ROWS_PER_LINE + 1)},
        {**line, "rows": [{**day, "clicks": -1}]},
    ]:
        assert not validator.is_valid(wrong)
        with pytest.raises(ValidationError):
            LINE.validate_python(wrong)
