"""Searching for one or two characters through the index, on SQLite.

A query of one or two characters makes no trigram, so 0013's FTS5 table could not
narrow it: such a search read every link of the user. Every occurrence of a short
query begins some trigram, though, if the text goes on for two more characters: so
the table now holds each link's search text followed by two newlines (which no query
holds), and a vocabulary table, `links_search_terms`, lists its trigrams in order, so
that those beginning with the query are a range of it (kurz.links.search, ADR 0018).

`links.search` itself is unchanged; only what the FTS5 table was given changes, so it
is emptied and filled again, and the triggers that keep it hand it the new values.
PostgreSQL's index is untouched.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TRIGGERS = ("links_search_insert", "links_search_update", "links_search_delete")


def _keeping(body: str) -> tuple[str, ...]:
    """The statements that fill links_search from links and make the triggers that
    keep it, `body` being what it holds of a row `r` (old, new or links itself)."""

    def of(row: str) -> str:
        return body.replace("r.", f"{row}.")

    return (
        "INSERT INTO links_search (links_search) VALUES ('delete-all')",
        f"""
        INSERT INTO links_search (rowid, owner, body)
        SELECT id, '<' || user_id || '>', {of("links")} FROM links WHERE deleted_at IS NULL
        """,
        f"""
        CREATE TRIGGER links_search_insert AFTER INSERT ON links WHEN new.deleted_at IS NULL
        BEGIN
            INSERT INTO links_search (rowid, owner, body)
            VALUES (new.id, '<' || new.user_id || '>', {of("new")});
        END
        """,
        f"""
        CREATE TRIGGER links_search_update AFTER UPDATE OF user_id, search, deleted_at ON links
        BEGIN
            INSERT INTO links_search (links_search, rowid, owner, body)
            SELECT 'delete', old.id, '<' || old.user_id || '>', {of("old")}
            WHERE old.deleted_at IS NULL;
            INSERT INTO links_search (rowid, owner, body)
            SELECT new.id, '<' || new.user_id || '>', {of("new")}
            WHERE new.deleted_at IS NULL;
        END
        """,
        f"""
        CREATE TRIGGER links_search_delete AFTER DELETE ON links WHEN old.deleted_at IS NULL
        BEGIN
            INSERT INTO links_search (links_search, rowid, owner, body)
            VALUES ('delete', old.id, '<' || old.user_id || '>', {of("old")});
        END
        """,
    )


def _drop_triggers() -> None:
    for trigger in _TRIGGERS:
        op.execute(f"DROP TRIGGER {trigger}")


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _drop_triggers()
    # A contentless table forgets the rows it was given only all at once ('delete-all')
    # or one by one with the values it was given: the old ones are 0013's.
    for statement in _keeping("r.search || char(10, 10)"):
        op.execute(statement)
    op.execute("CREATE VIRTUAL TABLE links_search_terms USING fts5vocab(links_search, instance)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("DROP TABLE links_search_terms")
    _drop_triggers()
    for statement in _keeping("r.search"):
        op.execute(statement)
