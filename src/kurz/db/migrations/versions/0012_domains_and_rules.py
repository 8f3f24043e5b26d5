"""Domains, and the rules a link may carry: a password, targeting rules, A/B variants,
fallback URLs and what link-preview bots are shown.

Every existing link moves to the default domain (domain_id 0: KURZ_BASE_URL's host,
which has no row), and a code becomes unique per domain instead of across kurz. The
new link columns are nullable, without defaults: an existing link has none of them.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kurz.db.tables import BigId, UTCDateTime

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LINK_COLUMNS = (
    "password_hash",
    "rules",
    "variants",
    "fallbacks",
    "og_title",
    "og_description",
    "og_image",
)


def upgrade() -> None:
    # The indexes are explained where kurz.db.tables declares them.
    op.create_table(
        "domains",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("host", sa.String(length=253), nullable=False),
        sa.Column("https", sa.Boolean(), nullable=False),
        sa.Column("root_redirect", sa.Text(), nullable=True),
        sa.Column("not_found_redirect", sa.Text(), nullable=True),
        sa.Column("expired_redirect", sa.Text(), nullable=True),
        sa.Column("used_up_redirect", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_domains"),
        sa.UniqueConstraint("host", name="uq_domains_host"),
        sqlite_autoincrement=True,
    )
    for column in _LINK_COLUMNS:
        op.add_column("links", sa.Column(column, sa.Text(), nullable=True))
    op.add_column(
        "links",
        sa.Column("domain_id", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
    )
    # The unique index first, so that no moment lets two links share a code.
    op.create_index("uq_links_domain_id_code", "links", ["domain_id", "code"], unique=True)
    with op.batch_alter_table("links") as batch:
        batch.drop_constraint("uq_links_code", type_="unique")


def downgrade() -> None:
    # A code used on two domains cannot go back to one namespace: the unique
    # constraint below then stops the downgrade, and nothing is lost.
    with op.batch_alter_table("links") as batch:
        batch.create_unique_constraint("uq_links_code", ["code"])
    op.drop_index("uq_links_domain_id_code", table_name="links")
    with op.batch_alter_table("links") as batch:
        batch.drop_column("domain_id")
        for column in reversed(_LINK_COLUMNS):
            batch.drop_column(column)
    op.drop_table("domains")
