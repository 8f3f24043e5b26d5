"""API keys, links and their tags.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kurz.db.tables import BigId, UTCDateTime

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The indexes are explained where kurz.db.tables declares them.
    op.create_table(
        "api_keys",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("is_admin", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("secret_hash", name="uq_api_keys_secret_hash"),
    )
    op.create_table(
        "links",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("is_alias", sa.Boolean(), nullable=False),
        sa.Column("owner_id", BigId, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("max_visits", sa.BigInteger(), nullable=True),
        sa.Column("visits", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("redirect_status", sa.SmallInteger(), nullable=False),
        sa.Column("forward_query", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("deleted_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "redirect_status IN (301, 302, 307, 308)", name="ck_links_redirect_status"
        ),
        sa.CheckConstraint("max_visits IS NULL OR max_visits >= 1", name="ck_links_max_visits"),
        sa.ForeignKeyConstraint(["owner_id"], ["api_keys.id"], name="fk_links_owner_id_api_keys"),
        sa.PrimaryKeyConstraint("id", name="pk_links"),
        sa.UniqueConstraint("code", name="uq_links_code"),
    )
    op.create_index(
        "ix_links_owner_id_id",
        "links",
        ["owner_id", "id"],
        sqlite_where=sa.text("deleted_at IS NULL"),
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_table(
        "link_tags",
        sa.Column("link_id", BigId, nullable=False),
        sa.Column("tag", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["link_id"], ["links.id"], name="fk_link_tags_link_id_links", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("link_id", "tag", name="pk_link_tags"),
    )
    op.create_index("ix_link_tags_tag_link_id", "link_tags", ["tag", "link_id"])


def downgrade() -> None:
    op.drop_table("link_tags")
    op.drop_table("links")
    op.drop_table("api_keys")
