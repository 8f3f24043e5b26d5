"""Links gain a start: before `starts_at` a visit is answered 410 (not active yet).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kurz.db.tables import UTCDateTime

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, without a default: every existing link is active already, and both
    # backends add such a column in place.
    op.add_column("links", sa.Column("starts_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    op.drop_column("links", "starts_at")
