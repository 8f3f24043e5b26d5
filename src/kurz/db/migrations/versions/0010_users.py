"""Users: every API key and every link belongs to one.

Each existing key gets a user of its own (an admin key an admin user, a revoked key a
disabled one), and each link the user of the key that created it. `links.owner_id`
stays: it now says which key created the link. Nothing reads the users yet.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kurz.db.tables import BigId, UTCDateTime

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A migrated user's address: RFC 2606's .invalid is never a real one, and the key's id
# tells which key the user was made for. It has no password, so it cannot sign in.
_EMAIL = "'key-' || CAST(api_keys.id AS TEXT) || '@migrated.invalid'"

_MAKE_USERS = f"""
INSERT INTO users (email, display_name, password_hash, role, disabled_at, created_at)
SELECT {_EMAIL}, name, NULL, CASE WHEN is_admin THEN 'admin' ELSE 'member' END,
       revoked_at, created_at
FROM api_keys
ORDER BY id
"""

_GIVE_KEYS_THEIR_USER = f"""
UPDATE api_keys SET user_id = (SELECT users.id FROM users WHERE users.email = {_EMAIL})
"""

_GIVE_LINKS_THEIR_KEYS_USER = """
UPDATE links SET user_id = (SELECT api_keys.user_id FROM api_keys
                            WHERE api_keys.id = links.owner_id)
"""


def upgrade() -> None:
    # The indexes are explained where kurz.db.tables declares them.
    op.create_table(
        "users",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), server_default="", nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("disabled_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint("role IN ('admin', 'member')", name=op.f("ck_users_role")),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
    )
    op.create_index("uq_users_email", "users", ["email"], unique=True)

    # Nullable first, so that both backends add the columns in place; set, then made
    # NOT NULL with their foreign keys. On SQLite that last step copies each table
    # (kurz.db.migrate runs it with foreign keys checked at the end, not on the way).
    op.add_column("api_keys", sa.Column("user_id", BigId, nullable=True))
    op.add_column("links", sa.Column("user_id", BigId, nullable=True))
    op.execute(_MAKE_USERS)
    op.execute(_GIVE_KEYS_THEIR_USER)
    op.execute(_GIVE_LINKS_THEIR_KEYS_USER)
    for table in ("api_keys", "links"):
        with op.batch_alter_table(table) as batch:
            batch.alter_column("user_id", existing_type=BigId, nullable=False)
            batch.create_foreign_key(f"fk_{table}_user_id_users", "users", ["user_id"], ["id"])
    op.create_index(
        "ix_links_user_id_id",
        "links",
        ["user_id", "id"],
        sqlite_where=sa.text("deleted_at IS NULL"),
        postgresql_where=sa.text("deleted_at IS NULL"),
    )


def downgrade() -> None:
    # Who owns what is still in links.owner_id, as before 0010.
    op.drop_index("ix_links_user_id_id", table_name="links")
    for table in ("links", "api_keys"):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"fk_{table}_user_id_users", type_="foreignkey")
            batch.drop_column("user_id")
    op.drop_index("uq_users_email", table_name="users")
    op.drop_table("users")
