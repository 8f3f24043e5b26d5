"""Idempotency records independent of the API: keyed by principal, operation and key.

A keyed write's record was an HTTP response (method, path, kept headers, body), so
gRPC had to pose as REST to share a key. It becomes (principal, operation, key) ->
fingerprint of the validated input, status (200 for a result, else the refusal's
Problem status) and the result's JSON (docs/decisions/0004-idempotency.md).

The rows kept (a 24-hour cache) are converted, not dropped: principal from scope,
operation from method and path (POST /api/v1/links: create-link; PATCH
/api/v1/links/{code}: update-link), the stored JSON kept; a refusal's problem+json
becomes the Problem's record, its ETag kept. Their fingerprints were of the raw body,
so a retry sent across the upgrade may be answered with the 422 "reused" instead of a
replay: nothing runs twice. Where one key was used on two links, one of the two
records is kept (a retry of the other is refused as reused).

The downgrade converts back what it can. A refused update's record does not name its
link (the path needs the code), so it is dropped: that update changed nothing, and
since a link's version only grows, a retry of it is refused again.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import SchemaItem

from kurz.db.tables import UTCDateTime

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "idempotency_keys"
INDEX = "ix_idempotency_keys_expires_at"
PRIMARY_KEY = "pk_idempotency_keys"
LINKS = "/api/v1/links"
DONE = 200
CHUNK = 1_000
# The members of a problem+json body that are not extensions.
_PROBLEM_MEMBERS = {"type", "title", "status", "detail", "instance", "errors"}


def _old_columns() -> list[SchemaItem]:
    return [
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("method", sa.String(10), nullable=False),
        sa.Column("path", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("headers", sa.Text(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", "method", "path", name=PRIMARY_KEY),
    ]


def _new_columns() -> list[SchemaItem]:
    return [
        sa.Column("principal", sa.String(64), nullable=False),
        sa.Column("operation", sa.String(32), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("principal", "operation", "key", name=PRIMARY_KEY),
    ]


def _table(name: str, columns: list[SchemaItem]) -> sa.Table:
    return sa.Table(name, sa.MetaData(), *columns)


def _set_aside(suffix: str) -> str:
    """Rename the table out of the way, its primary key and index with it."""
    aside = f"{TABLE}_{suffix}"
    op.drop_index(INDEX, table_name=TABLE)
    op.rename_table(TABLE, aside)
    if op.get_bind().dialect.name == "postgresql":
        # PostgreSQL's constraint names are its index names, one namespace per schema.
        op.execute(f"ALTER TABLE {aside} RENAME CONSTRAINT {PRIMARY_KEY} TO {PRIMARY_KEY}_{suffix}")
    return aside


def _copy(
    source: sa.Table, target: sa.Table, convert: Callable[[sa.Row[Any]], dict[str, Any] | None]
) -> None:
    """Every row of `source` that `convert` keeps, into `target`, a chunk at a time."""
    bind = op.get_bind()
    insert = (postgresql.insert if bind.dialect.name == "postgresql" else sqlite.insert)(target)
    insert = insert.on_conflict_do_nothing()
    key = sa.tuple_(*source.primary_key.columns)
    after: tuple[Any, ...] | None = None
    while True:
        query = sa.select(source).order_by(*source.primary_key.columns).limit(CHUNK)
        if after is not None:
            query = query.where(key > sa.tuple_(*(sa.literal(value) for value in after)))
        chunk = bind.execute(query).all()
        if not chunk:
            return
        after = tuple(getattr(chunk[-1], c.name) for c in source.primary_key.columns)
        rows = [row for row in map(convert, chunk) if row is not None]
        if rows:
            bind.execute(insert, rows)


def _operation(method: str, path: str) -> str | None:
    if method == "POST" and path == LINKS:
        return "create-link"
    if method == "PATCH" and path.startswith(f"{LINKS}/"):
        return "update-link"
    return None


def _record(row: sa.Row[Any]) -> dict[str, Any] | None:
    """An old row (an HTTP response) as a record."""
    operation = _operation(row.method, row.path)
    if operation is None:
        return None
    body = bytes(row.body).decode()
    if row.status < 400:
        status, result = DONE, body
    else:
        problem = json.loads(body)
        kept: dict[str, Any] = {
            "type": str(problem["type"]).removeprefix("/problems/"),
            "title": problem["title"],
            "detail": problem["detail"],
        }
        if problem.get("errors") is not None:
            kept["errors"] = problem["errors"]
        extensions = {k: v for k, v in problem.items() if k not in _PROBLEM_MEMBERS}
        if extensions:
            kept["extensions"] = extensions
        etag = dict(json.loads(row.headers)).get("etag")
        if etag is not None:
            kept["etag"] = etag
        status, result = row.status, json.dumps(kept, separators=(",", ":"), ensure_ascii=False)
    return {
        "principal": row.scope,
        "operation": operation,
        "key": row.key,
        "fingerprint": row.fingerprint,
        "status": status,
        "result": result,
        "created_at": row.created_at,
        "expires_at": row.expires_at,
    }


def _response(row: sa.Row[Any]) -> dict[str, Any] | None:
    """A record as the HTTP response the old table kept; None when it names no path."""
    kept = json.loads(row.result)
    if row.status == DONE:
        path = LINKS if row.operation == "create-link" else f"{LINKS}/{kept['code']}"
        headers = [["content-type", "application/json"], ["etag", f'"{kept["version"]}"']]
        if row.operation == "create-link":
            headers.append(["location", f"{LINKS}/{kept['code']}"])
        status, body = (201 if row.operation == "create-link" else 200), row.result
    elif row.operation == "create-link":
        path, slug = LINKS, kept["type"]
        problem = {
            "type": slug if ":" in slug else f"/problems/{slug}",
            "title": kept["title"],
            "status": row.status,
            "detail": kept["detail"],
            "instance": path,
        }
        if "errors" in kept:
            problem["errors"] = kept["errors"]
        problem.update(kept.get("extensions", {}))
        headers = [["content-type", "application/problem+json"]]
        if "etag" in kept:
            headers.append(["etag", kept["etag"]])
        status, body = row.status, json.dumps(problem, separators=(",", ":"), ensure_ascii=False)
    else:
        return None
    return {
        "scope": row.principal,
        "key": row.key,
        "method": "POST" if row.operation == "create-link" else "PATCH",
        "path": path,
        "fingerprint": row.fingerprint,
        "status": status,
        "headers": json.dumps(headers),
        "body": body.encode(),
        "created_at": row.created_at,
        "expires_at": row.expires_at,
    }


def _convert(
    suffix: str,
    old: Callable[[], list[SchemaItem]],
    new: Callable[[], list[SchemaItem]],
    convert: Callable[[sa.Row[Any]], dict[str, Any] | None],
) -> None:
    aside = _set_aside(suffix)
    op.create_table(TABLE, *new())
    op.create_index(INDEX, TABLE, ["expires_at"])
    _copy(_table(aside, old()), _table(TABLE, new()), convert)
    op.drop_table(aside)


def upgrade() -> None:
    _convert("0007", _old_columns, _new_columns, _record)


def downgrade() -> None:
    _convert("0008", _new_columns, _old_columns, _response)
