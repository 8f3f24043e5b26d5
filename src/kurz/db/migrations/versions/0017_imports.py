"""Imports: each import, its uploaded file, its report, and where each imported link
came from (docs/imports.md, ADR 0022).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kurz.db.tables import BigId, UTCDateTime

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ZERO = sa.text("0")


def upgrade() -> None:
    # The indexes are explained where kurz.db.tables declares them.
    op.create_table(
        "imports",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("started_by_user_id", BigId, nullable=True),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("settings", sa.Text(), nullable=True),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column("on_conflict", sa.String(length=10), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("position", sa.Text(), nullable=True),
        sa.Column("total", sa.BigInteger(), nullable=True),
        sa.Column("read", sa.BigInteger(), server_default=_ZERO, nullable=False),
        sa.Column("imported", sa.BigInteger(), server_default=_ZERO, nullable=False),
        sa.Column("skipped", sa.BigInteger(), server_default=_ZERO, nullable=False),
        sa.Column("failed", sa.BigInteger(), server_default=_ZERO, nullable=False),
        sa.Column("clicks", sa.BigInteger(), server_default=_ZERO, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("job_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_imports_user_id_users"),
        sa.PrimaryKeyConstraint("id", name="pk_imports"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_imports_user_id_id", "imports", ["user_id", "id"], unique=False)
    op.create_table(
        "import_files",
        sa.Column("import_id", sa.BigInteger(), nullable=False),
        sa.Column("piece", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["import_id"],
            ["imports.id"],
            name="fk_import_files_import_id_imports",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("import_id", "piece", name="pk_import_files"),
    )
    op.create_table(
        "import_rows",
        sa.Column("import_id", sa.BigInteger(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("place", sa.String(length=300), nullable=False),
        sa.Column("source_id", sa.String(length=400), nullable=True),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["import_id"],
            ["imports.id"],
            name="fk_import_rows_import_id_imports",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("import_id", "n", name="pk_import_rows"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "link_sources",
        sa.Column("link_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("source_id", sa.String(length=400), nullable=False),
        sa.Column("import_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("link_id", name="pk_link_sources"),
    )
    op.create_index(
        "uq_link_sources_source_id_source_user_id",
        "link_sources",
        ["source_id", "source", "user_id"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("uq_link_sources_source_id_source_user_id", table_name="link_sources")
    op.drop_table("link_sources")
    op.drop_table("import_rows")
    op.drop_table("import_files")
    op.drop_index("ix_imports_user_id_id", table_name="imports")
    op.drop_table("imports")
