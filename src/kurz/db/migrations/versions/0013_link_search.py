"""Searching links: each link's search text, its index, and an index to list by code.

`links.search` holds what a search matches, case-folded (kurz.links.search.text_of);
it is written here for the links made before. The index over it differs by backend
(ADR 0018): on SQLite a contentless FTS5 table with the trigram tokenizer, kept by
triggers on links; on PostgreSQL a GIN index of pg_trgm, whose extension this makes
if the database lacks it (pg_trgm is a trusted extension: a database owner may make
it; its files come with PostgreSQL's contrib modules).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 1000

# A live link is in the index as its owner, "<user id>" (so that a member's search
# reads their links only), and its search text; a tombstone is not. A contentless
# table forgets a row only when told the values it was given, so each trigger hands
# back exactly those (kurz.links.search reads it).
_SQLITE_SEARCH = (
    """
    CREATE VIRTUAL TABLE links_search USING fts5(
        owner, body, content='', detail=column, tokenize='trigram case_sensitive 1'
    )
    """,
    """
    INSERT INTO links_search (rowid, owner, body)
    SELECT id, '<' || user_id || '>', search FROM links WHERE deleted_at IS NULL
    """,
    """
    CREATE TRIGGER links_search_insert AFTER INSERT ON links WHEN new.deleted_at IS NULL
    BEGIN
        INSERT INTO links_search (rowid, owner, body)
        VALUES (new.id, '<' || new.user_id || '>', new.search);
    END
    """,
    """
    CREATE TRIGGER links_search_update AFTER UPDATE OF user_id, search, deleted_at ON links
    BEGIN
        INSERT INTO links_search (links_search, rowid, owner, body)
        SELECT 'delete', old.id, '<' || old.user_id || '>', old.search
        WHERE old.deleted_at IS NULL;
        INSERT INTO links_search (rowid, owner, body)
        SELECT new.id, '<' || new.user_id || '>', new.search
        WHERE new.deleted_at IS NULL;
    END
    """,
    """
    CREATE TRIGGER links_search_delete AFTER DELETE ON links WHEN old.deleted_at IS NULL
    BEGIN
        INSERT INTO links_search (links_search, rowid, owner, body)
        VALUES ('delete', old.id, '<' || old.user_id || '>', old.search);
    END
    """,
)
_SQLITE_TRIGGERS = ("links_search_insert", "links_search_update", "links_search_delete")


def _text_of(code: str, url: str, title: str | None, tags: list[str]) -> str:
    # kurz.links.search.text_of as of this revision (a migration keeps its own copy).
    return "\n".join([code, url, title or "", *tags]).casefold()


def _fill_search() -> None:
    bind = op.get_bind()
    links = sa.table(
        "links", sa.column("id"), sa.column("code"), sa.column("url"), sa.column("og_title")
    )
    link_tags = sa.table("link_tags", sa.column("link_id"), sa.column("tag"))
    tags: dict[int, list[str]] = defaultdict(list)
    for link_id, tag in bind.execute(
        sa.select(link_tags.c.link_id, link_tags.c.tag).order_by(
            link_tags.c.link_id, link_tags.c.tag
        )
    ):
        tags[link_id].append(tag)
    rows = bind.execute(sa.select(links.c.id, links.c.code, links.c.url, links.c.og_title))
    update = sa.text("UPDATE links SET search = :search WHERE id = :link_id")
    while batch := rows.fetchmany(_BATCH):
        bind.execute(
            update,
            [
                {
                    "link_id": row.id,
                    "search": _text_of(row.code, row.url, row.og_title, tags[row.id]),
                }
                for row in batch
            ],
        )


def upgrade() -> None:
    # The B-tree indexes are explained where kurz.db.tables declares them.
    op.add_column("links", sa.Column("search", sa.Text(), nullable=True))
    _fill_search()
    op.create_index(
        "ix_links_user_id_code",
        "links",
        ["user_id", "code", "id"],
        sqlite_where=sa.text("deleted_at IS NULL"),
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    if op.get_bind().dialect.name == "sqlite":
        for statement in _SQLITE_SEARCH:
            op.execute(statement)
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE INDEX ix_links_search ON links USING gin (search gin_trgm_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in _SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {trigger}")
        op.execute("DROP TABLE links_search")
    else:
        # The extension stays: something else in the database may use it.
        op.drop_index("ix_links_search", table_name="links")
    op.drop_index("ix_links_user_id_code", table_name="links")
    with op.batch_alter_table("links") as batch:
        batch.drop_column("search")
