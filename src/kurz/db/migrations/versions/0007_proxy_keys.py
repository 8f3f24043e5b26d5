"""Proxy keys: API keys an edge proxy calls ResolveLink with, naming the visitor.

Only such a key's ResolveLink may say whom the visit is for (the visitor's address,
user agent and referrer); every existing key is not one (docs/grpc.md).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # SQLite adds a NOT NULL column in place when it has a default: no table rebuild,
    # which api_keys, referenced by every link, would make costly.
    op.add_column(
        "api_keys",
        sa.Column("is_proxy", sa.Boolean(), server_default=sa.false(), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("api_keys", "is_proxy")
