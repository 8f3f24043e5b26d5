"""Accounts: scoped keys with expiry, sessions, one-time links, the audit log, and who
made and last changed each link.

A key's is_admin and is_proxy become scopes: every key keeps `links:read links:write
stats:read`; an admin key gains `metrics:read admin`, a proxy key `proxy`. So no key
loses or gains a power. As `proxy` is an admin's scope now, and a key never has more
than its user, a proxy key's user becomes an admin (as `kurz keys create --proxy` makes
it). `links.owner_id` (the key that made the link) becomes `created_by_key_id`, beside
the user who made it (the link's user, when migrated).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kurz.db.tables import BigId, UTCDateTime

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SCOPES_FROM_FLAGS = """
UPDATE api_keys SET scopes = 'links:read links:write stats:read'
    || CASE WHEN is_admin THEN ' metrics:read admin' ELSE '' END
    || CASE WHEN is_proxy THEN ' proxy' ELSE '' END
"""

_PROXY_KEYS_USERS_ADMIN = """
UPDATE users SET role = 'admin' WHERE id IN (SELECT user_id FROM api_keys WHERE is_proxy)
"""

_FLAGS_FROM_SCOPES = """
UPDATE api_keys SET is_admin = (scopes LIKE '%admin%'), is_proxy = (scopes LIKE '%proxy%')
"""


def upgrade() -> None:
    # The indexes are explained where kurz.db.tables declares them.
    op.add_column("api_keys", sa.Column("scopes", sa.Text(), server_default="", nullable=False))
    op.add_column("api_keys", sa.Column("expires_at", UTCDateTime(), nullable=True))
    op.add_column("api_keys", sa.Column("last_used_at", UTCDateTime(), nullable=True))
    op.execute(_SCOPES_FROM_FLAGS)
    op.execute(_PROXY_KEYS_USERS_ADMIN)
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("is_admin")
        batch.drop_column("is_proxy")
    op.create_index("ix_api_keys_user_id", "api_keys", ["user_id"])
    if op.get_bind().dialect.name == "sqlite":
        # Users and keys can now be deleted: ids that never come back (kurz.db.tables).
        for table in ("users", "api_keys"):
            with op.batch_alter_table(
                table, recreate="always", table_kwargs={"sqlite_autoincrement": True}
            ):
                pass

    op.drop_index("ix_links_owner_id_id", table_name="links")
    op.add_column("links", sa.Column("created_by_user_id", BigId, nullable=True))
    op.add_column("links", sa.Column("updated_by_user_id", BigId, nullable=True))
    op.add_column("links", sa.Column("updated_by_key_id", BigId, nullable=True))
    op.execute("UPDATE links SET created_by_user_id = user_id")
    with op.batch_alter_table("links") as batch:
        batch.drop_constraint("fk_links_owner_id_api_keys", type_="foreignkey")
        batch.alter_column(
            "owner_id", new_column_name="created_by_key_id", existing_type=BigId, nullable=True
        )

    op.create_table(
        "sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("seen_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_sessions_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id_hash", name="pk_sessions"),
    )
    op.create_index("ix_sessions_user_id", "sessions", ["user_id"])
    op.create_index("ix_sessions_expires_at", "sessions", ["expires_at"])

    op.create_table(
        "one_time_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=10), nullable=False),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("role", sa.Text(), nullable=True),
        sa.Column("user_id", BigId, nullable=True),
        sa.Column("created_by", BigId, nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "purpose IN ('setup', 'invite', 'reset')", name=op.f("ck_one_time_tokens_purpose")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_one_time_tokens_user_id_users",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name="pk_one_time_tokens"),
    )

    op.create_table(
        "audit_events",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("actor_user_id", BigId, nullable=True),
        sa.Column("actor_key_id", BigId, nullable=True),
        sa.Column("user_id", BigId, nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.Text(), server_default="{}", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
    )
    op.create_index("ix_audit_events_at", "audit_events", ["at"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_at", table_name="audit_events")
    op.drop_table("audit_events")
    op.drop_table("one_time_tokens")
    op.drop_index("ix_sessions_expires_at", table_name="sessions")
    op.drop_index("ix_sessions_user_id", table_name="sessions")
    op.drop_table("sessions")

    # A link made in a session has no key; before 0011 every link had one. Such links
    # take their user's oldest key, or stop the downgrade when the user has none.
    op.execute(
        "UPDATE links SET created_by_key_id = (SELECT MIN(api_keys.id) FROM api_keys "
        "WHERE api_keys.user_id = links.user_id) WHERE created_by_key_id IS NULL"
    )
    # Two steps: a foreign key made in the step that renames its column is lost.
    with op.batch_alter_table("links") as batch:
        batch.alter_column(
            "created_by_key_id", new_column_name="owner_id", existing_type=BigId, nullable=False
        )
    with op.batch_alter_table("links") as batch:
        batch.create_foreign_key("fk_links_owner_id_api_keys", "api_keys", ["owner_id"], ["id"])
        batch.drop_column("updated_by_key_id")
        batch.drop_column("updated_by_user_id")
        batch.drop_column("created_by_user_id")
    op.create_index(
        "ix_links_owner_id_id",
        "links",
        ["owner_id", "id"],
        sqlite_where=sa.text("deleted_at IS NULL"),
        postgresql_where=sa.text("deleted_at IS NULL"),
    )

    op.drop_index("ix_api_keys_user_id", table_name="api_keys")
    op.add_column(
        "api_keys", sa.Column("is_admin", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.add_column(
        "api_keys", sa.Column("is_proxy", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    # Users made admins for their proxy keys stay admins: 0010 reads no role.
    op.execute(_FLAGS_FROM_SCOPES)
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("last_used_at")
        batch.drop_column("expires_at")
        batch.drop_column("scopes")
