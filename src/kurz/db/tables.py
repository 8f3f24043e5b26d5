"""The schema (SQLAlchemy Core). Every index names the query it serves."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

# Constraint names are fixed so that migrations and error handling can refer to them.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only makes a rowid alias (and so an auto-increment key) of INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")

# For tables keyed by something other than an integer, read and written by their key
# only: on SQLite the key is then the table's one B-tree, instead of an index beside a
# rowid table (a range read with no lookup per row, an upsert writing one B-tree).
WITHOUT_ROWID: dict[str, Any] = {"sqlite_with_rowid": False}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both backends (SQLite stores them naive, in UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


users = Table(
    "users",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    # Stored normalised (stripped, lower-cased) by the code that writes it, so that the
    # unique index compares addresses case-insensitively and a sign-in finds its row.
    Column("email", Text, nullable=False),
    Column("display_name", Text, nullable=False, server_default=""),
    # NULL until a password is set: a user made for an API key (migration 0010, or
    # `kurz keys create`) has none and cannot sign in.
    Column("password_hash", Text, nullable=True),
    Column("role", Text, nullable=False),
    Column("disabled_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=True),
    CheckConstraint("role IN ('admin', 'member')", name="role"),
    # Sign-in and invitations: SELECT ... WHERE email = :email.
    Index("uq_users_email", "email", unique=True),
    # SQLite would otherwise give a deleted user's id to the next user made, and the
    # audit log and links' created_by, which outlive the user, would name the new one.
    # (PostgreSQL's sequences never hand out an id twice.)
    sqlite_autoincrement=True,
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False),
    # The first characters of the secret, shown in listings so a person can tell keys apart.
    Column("prefix", String(16), nullable=False),
    # SHA-256 of the secret. Authentication: SELECT ... WHERE secret_hash = :hash.
    Column("secret_hash", String(64), nullable=False, unique=True),
    # What the key may do, space-separated (kurz.auth.models.SCOPES); never more than
    # its user's role allows, which authentication checks again on every call.
    Column("scopes", Text, nullable=False, server_default=""),
    # The user the key acts for.
    Column("user_id", BigId, ForeignKey("users.id"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    # Written at most once a minute per key, and never by a redirect.
    Column("last_used_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
    # A user's keys, for listing and for ending them all with the user:
    #   SELECT ... WHERE user_id = :user
    Index("ix_api_keys_user_id", "user_id"),
    # As for users: a deleted user's keys are deleted, and their ids must not return.
    sqlite_autoincrement=True,
)

# A signed-in browser. The cookie holds a random 256-bit id; the row is found by its
# SHA-256, so the table holds no usable session (ADR 0016).
sessions = Table(
    "sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", BigId, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # The idle lifetime runs from here; written at most once a minute.
    Column("seen_at", UTCDateTime, nullable=False),
    # The absolute lifetime: the session ends then, however active.
    Column("expires_at", UTCDateTime, nullable=False),
    Column("ip", String(64), nullable=True),
    Column("user_agent", String(200), nullable=True),
    # Ending every session of a user (sign out everywhere, a password change, disabling):
    #   DELETE ... WHERE user_id = :user
    Index("ix_sessions_user_id", "user_id"),
    # Purging ended sessions: DELETE ... WHERE expires_at < :now
    Index("ix_sessions_expires_at", "expires_at"),
)

# One-time links: the first-run setup, invitations and password resets. The URL holds
# a random token; the row is found by its SHA-256, and used once:
#   UPDATE ... SET used_at = :now WHERE token_hash = :h AND used_at IS NULL
one_time_tokens = Table(
    "one_time_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("purpose", String(10), nullable=False),
    # An invitation's address and role; a reset's user.
    Column("email", Text, nullable=True),
    Column("role", Text, nullable=True),
    Column("user_id", BigId, ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
    # The admin who made it (none for the first-run setup).
    Column("created_by", BigId, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
    CheckConstraint("purpose IN ('setup', 'invite', 'reset')", name="purpose"),
)

# Account events an admin reads at GET /api/v1/audit; purged after
# KURZ_AUDIT_RETENTION. Who did it (a user, with the key if one was used), to whom,
# from where. No foreign keys: an event outlives the user and key it names.
audit_events = Table(
    "audit_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("event", String(40), nullable=False),
    Column("actor_user_id", BigId, nullable=True),
    Column("actor_key_id", BigId, nullable=True),
    Column("user_id", BigId, nullable=True),
    Column("ip", String(64), nullable=True),
    # JSON: what else the event says (a key's id and name, a role's old and new value).
    Column("detail", Text, nullable=False, server_default="{}"),
    # Reading newest first, and purging: ORDER BY id DESC / WHERE at < :cutoff.
    Index("ix_audit_events_at", "at"),
)

# The domains kurz answers for besides the default one (KURZ_BASE_URL's host, which
# has no row: links.domain_id 0). Managed by admins (kurz.links.domains); every kurz
# process keeps them all in memory, to pick a request's domain by its Host.
domains = Table(
    "domains",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    # Lower-case ASCII (an IDN in its xn-- form), no port, no trailing dot: what a Host
    # header is normalised to before it is looked up.
    Column("host", String(253), nullable=False, unique=True),
    # Whether its short URLs are https://.
    Column("https", Boolean, nullable=False),
    # Where a visit goes instead of kurz's own page: GET /, an unknown code, an expired
    # link, a used-up link. NULL: the instance-wide setting, else kurz's page.
    Column("root_redirect", Text, nullable=True),
    Column("not_found_redirect", Text, nullable=True),
    Column("expired_redirect", Text, nullable=True),
    Column("used_up_redirect", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # As for users and keys: a deleted domain's id is never given to another, so that a
    # link can never move to a domain by accident.
    sqlite_autoincrement=True,
)

links = Table(
    "links",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    # The domain the link answers on: a row of `domains`, or 0 for the default domain
    # (KURZ_BASE_URL's host), which has no row, so that changing KURZ_BASE_URL moves
    # its links with it. Not a foreign key for that reason; a domain with live links
    # is not deleted (kurz.links.domains).
    Column("domain_id", BigInteger, nullable=False, server_default=text("0")),
    Column("code", String(64), nullable=False),
    Column("url", Text, nullable=False),
    Column("is_alias", Boolean, nullable=False),
    # The user the link belongs to (who sees it; ADR 0016).
    Column("user_id", BigId, ForeignKey("users.id"), nullable=False),
    # Who made it and who changed it last: a user, and the key they used (none when
    # signed in). Not foreign keys: the record outlives a deleted user.
    Column("created_by_user_id", BigId, nullable=True),
    Column("created_by_key_id", BigId, nullable=True),
    Column("updated_by_user_id", BigId, nullable=True),
    Column("updated_by_key_id", BigId, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # The window a link redirects in, [starts_at, expires_at); either end may be open.
    Column("starts_at", UTCDateTime, nullable=True),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("max_visits", BigInteger, nullable=True),
    Column("visits", BigInteger, nullable=False, server_default=text("0")),
    Column("redirect_status", SmallInteger, nullable=False),
    Column("forward_query", Boolean, nullable=False),
    # Argon2id of the link's password (kurz.accounts.passwords); NULL: none.
    Column("password_hash", Text, nullable=True),
    # JSON, as kurz.links validates and writes them: the targeting rules (an ordered
    # list, first match wins), the A/B variants with their weights and how one is
    # chosen, and the fallback URLs for a visit before valid_from, after expires_at or
    # past max_visits. NULL: none.
    Column("rules", Text, nullable=True),
    Column("variants", Text, nullable=True),
    Column("fallbacks", Text, nullable=True),
    # What a link-preview bot is shown instead of the target (ADR 0017). NULL: none.
    Column("og_title", Text, nullable=True),
    Column("og_description", Text, nullable=True),
    Column("og_image", Text, nullable=True),
    # What a search matches (kurz.links.search.text_of): the code, URL, title and tags,
    # case-folded, one per line; written with the link and its tags. NULL: not searched
    # yet (written by migration 0013 for links made before it).
    Column("search", Text, nullable=True),
    # Optimistic concurrency: UPDATE ... WHERE id = :id AND version = :expected.
    Column("version", Integer, nullable=False, server_default=text("1")),
    # Deleted links stay as tombstones so that their code is never handed out again.
    Column("deleted_at", UTCDateTime, nullable=True),
    CheckConstraint("redirect_status IN (301, 302, 307, 308)", name="redirect_status"),
    CheckConstraint("max_visits IS NULL OR max_visits >= 1", name="max_visits"),
    # Redirect: SELECT ... WHERE domain_id = :domain AND code = :code. A code is unique
    # per domain (one alias on two domains is two links); the unique index also makes a
    # colliding generated code fail its INSERT, which is how codes stay unique across
    # processes.
    Index("uq_links_domain_id_code", "domain_id", "code", unique=True),
    # Listing one user's links, newest first, by keyset:
    #   SELECT ... WHERE user_id = :user AND deleted_at IS NULL AND id < :cursor
    #   ORDER BY id DESC LIMIT :n
    # Partial, so tombstones cost the listing nothing. (An admin's listing of every
    # link walks the primary key instead.)
    Index(
        "ix_links_user_id_id",
        "user_id",
        "id",
        sqlite_where=text("deleted_at IS NULL"),
        postgresql_where=text("deleted_at IS NULL"),
    ),
    # Listing one user's links by code, A to Z, by keyset (kurz.links.search):
    #   SELECT ... WHERE user_id = :user AND deleted_at IS NULL AND (code, id) > (:c, :id)
    #   ORDER BY code, id LIMIT :n
    Index(
        "ix_links_user_id_code",
        "user_id",
        "code",
        "id",
        sqlite_where=text("deleted_at IS NULL"),
        postgresql_where=text("deleted_at IS NULL"),
    ),
    # Searching the `search` text takes an index that differs by backend, so that
    # migration 0013 makes it rather than this table (ADR 0018): on SQLite the FTS5
    # table `links_search` (trigram), kept by triggers on links; on PostgreSQL a pg_trgm
    # GIN index, `ix_links_search`. A later migration that copies `links` on SQLite
    # (batch mode) drops those triggers with the old table and must make them again.
    # Retiring expired links (kurz.links.scheduled):
    #   WHERE deleted_at IS NULL AND expires_at < :cutoff LIMIT :n
    # Partial: links without an expiry, or already retired, are not in it.
    Index(
        "ix_links_expires_at",
        "expires_at",
        sqlite_where=text("deleted_at IS NULL AND expires_at IS NOT NULL"),
        postgresql_where=text("deleted_at IS NULL AND expires_at IS NOT NULL"),
    ),
)

link_tags = Table(
    "link_tags",
    metadata,
    # The primary key serves loading the tags of a page of links:
    #   SELECT link_id, tag FROM link_tags WHERE link_id IN (...)
    Column("link_id", BigId, ForeignKey("links.id", ondelete="CASCADE"), primary_key=True),
    Column("tag", String(64), primary_key=True),
    # Listing by tag, newest first, by keyset:
    #   SELECT ... FROM link_tags JOIN links ON links.id = link_tags.link_id
    #   WHERE link_tags.tag = :tag AND link_tags.link_id < :cursor
    #   ORDER BY link_tags.link_id DESC LIMIT :n
    Index("ix_link_tags_tag_link_id", "tag", "link_id"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    # Whose key it is (an opaque principal, e.g. "key:12") and for which operation
    # ("create-link", "update-link"): no HTTP method or path, so that REST and gRPC
    # share a key. The primary key serves the one lookup a keyed write makes:
    #   SELECT ... WHERE principal = :p AND operation = :o AND key = :k
    Column("principal", String(64), primary_key=True),
    Column("operation", String(32), primary_key=True),
    Column("key", String(255), primary_key=True),
    # SHA-256 (hex) of the validated input as canonical JSON: a retry must send the same.
    Column("fingerprint", String(64), nullable=False),
    # 200 for a result; a refusal's Problem status.
    Column("status", SmallInteger, nullable=False),
    # The result's JSON (a LinkRead), or the refusal's (kurz.idempotency.record).
    Column("result", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # The purge: DELETE ... WHERE expires_at <= :now, in batches.
    Column("expires_at", UTCDateTime, nullable=False, index=True),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    # A handler registered in kurz.jobs.Registry.
    Column("kind", String(100), nullable=False),
    Column("queue", String(100), nullable=False),
    # JSON.
    Column("payload", Text, nullable=False),
    # Higher runs first.
    Column("priority", SmallInteger, nullable=False),
    Column("run_at", UTCDateTime, nullable=False),
    # queued, running, done or dead.
    Column("state", String(10), nullable=False),
    Column("attempts", SmallInteger, nullable=False),
    Column("max_attempts", SmallInteger, nullable=False),
    Column("unique_key", String(255)),
    # Who holds a running job, and until when: after that another worker may take it.
    Column("locked_by", String(100)),
    Column("locked_until", UTCDateTime),
    Column("last_error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    # The claim: WHERE state = 'queued' AND queue IN (...) AND run_at <= :now
    # ORDER BY priority DESC, run_at, id. Partial, so done jobs (most rows) cost it
    # nothing; the due rows it finds are few, and sorted as they are read.
    Index(
        "ix_jobs_claim",
        "queue",
        "run_at",
        postgresql_where=text("state = 'queued'"),
        sqlite_where=text("state = 'queued'"),
    ),
    # Running jobs whose lease ran out are claimable too: WHERE state = 'running' AND
    # locked_until < :now.
    Index(
        "ix_jobs_lease",
        "locked_until",
        postgresql_where=text("state = 'running'"),
        sqlite_where=text("state = 'running'"),
    ),
    # At most one unfinished job per unique key; the enqueue that loses the race
    # returns the winner's job.
    Index(
        "uq_jobs_unique_key",
        "unique_key",
        unique=True,
        postgresql_where=text("state IN ('queued', 'running') AND unique_key IS NOT NULL"),
        sqlite_where=text("state IN ('queued', 'running') AND unique_key IS NOT NULL"),
    ),
    # kurz jobs list --state dead, counts per state.
    Index("ix_jobs_state", "state", "queue"),
)

job_schedules = Table(
    "job_schedules",
    metadata,
    # A periodic schedule's name, and the last tick enqueued for it: a tick is enqueued
    # by the one scheduler whose UPDATE moves this forward, so exactly once.
    Column("name", String(100), primary_key=True),
    Column("last_tick", UTCDateTime, nullable=False),
)

# Click analytics (kurz.analytics). Raw events are kept for a retention period; every
# count the API reads comes from the rollups below, never from COUNT(*) over events.
# docs/analytics.md explains the shapes and what each write costs.
click_batches = Table(
    "click_batches",
    metadata,
    # The batches recorded, each with its raw events: the click log. A batch delivered
    # again (a retried write whose commit was not acknowledged, a stream entry claimed
    # from a dead consumer) finds its id here and is skipped whole, so that counts stay
    # exact. An id starts with its batch's time in hex, so that the purges are ranges
    # of the key.
    Column("id", String(32), primary_key=True),
    # The batch's events as JSON (kurz.analytics.events.encode), one array of fields
    # each: one row per batch, where a row per click cost every click an insert and
    # its purge a delete (ADR 0010). The view click_events (migration 0006) shows them
    # a row each. NULL once past the retention, while the id is still kept
    # (BATCH_MEMORY).
    Column("events", Text),
    **WITHOUT_ROWID,
)

link_clicks_hourly = Table(
    "link_clicks_hourly",
    metadata,
    # A link's time series: WHERE link_id = :id AND hour >= :from AND hour < :to,
    # served by the primary key.
    Column("link_id", BigInteger, primary_key=True),
    Column("hour", UTCDateTime, primary_key=True),
    # Clicks by people; bots are counted apart and left out of the headline.
    Column("clicks", BigInteger, nullable=False),
    Column("bot_clicks", BigInteger, nullable=False),
    # Distinct visitors (daily hashes) among the people's clicks of that hour.
    Column("uniques", BigInteger, nullable=False),
    **WITHOUT_ROWID,
)

link_clicks_daily = Table(
    "link_clicks_daily",
    metadata,
    # The same per UTC day: the daily series and the totals across a caller's links
    # (WHERE link_id IN (...) AND day >= :from AND day < :to), by the primary key.
    Column("link_id", BigInteger, primary_key=True),
    Column("day", UTCDateTime, primary_key=True),
    Column("clicks", BigInteger, nullable=False),
    Column("bot_clicks", BigInteger, nullable=False),
    # Distinct visitors of the day: not the sum of the hours' uniques, as a visitor
    # who comes back in another hour is one visitor of the day.
    Column("uniques", BigInteger, nullable=False),
    **WITHOUT_ROWID,
)

# Which visitors an hour (a day) has seen, so that `uniques` is exact: a visitor's
# first click of the hour inserts a row here and adds one; the rest insert nothing.
# Needed only while late clicks can still arrive, so purged after two days: the time
# leads the key, which makes the purge a range of it, and today's inserts land
# together at its end instead of all over the table.
link_visitors_hourly = Table(
    "link_visitors_hourly",
    metadata,
    Column("hour", UTCDateTime, primary_key=True),
    Column("link_id", BigInteger, primary_key=True),
    Column("visitor", String(16), primary_key=True),
    **WITHOUT_ROWID,
)

link_visitors_daily = Table(
    "link_visitors_daily",
    metadata,
    Column("day", UTCDateTime, primary_key=True),
    Column("link_id", BigInteger, primary_key=True),
    Column("visitor", String(16), primary_key=True),
    **WITHOUT_ROWID,
)

# The same totals per owner: what a user's links' link_clicks_daily rows sum to, so
# that the dashboard reads a row per day however many links the user has. Written
# with link_clicks_daily, from the same batch; the owner is the link's user_id, deleted
# links included (their clicks happened). `uniques` is the sum of the links' uniques
# (visitor-links), not distinct visitors of the owner. Read:
#   WHERE user_id = :user AND day >= :from AND day < :to, a range of the primary key.
owner_clicks_daily = Table(
    "owner_clicks_daily",
    metadata,
    Column("user_id", BigInteger, primary_key=True),
    Column("day", UTCDateTime, primary_key=True),
    Column("clicks", BigInteger, nullable=False),
    Column("bot_clicks", BigInteger, nullable=False),
    Column("uniques", BigInteger, nullable=False),
    **WITHOUT_ROWID,
)

# Every link's clicks by people of all time, with its owner, written with
# link_clicks_daily: a user's most clicked links without summing their daily rows.
link_clicks_total = Table(
    "link_clicks_total",
    metadata,
    Column("link_id", BigInteger, primary_key=True),
    # The link's user_id, set again by every batch that counts the link.
    Column("user_id", BigInteger, nullable=False),
    Column("clicks", BigInteger, nullable=False),
    # A user's most clicked links, read backwards (both databases do), stopping at
    # the tenth live one:
    #   WHERE user_id = :user ORDER BY clicks DESC, link_id DESC LIMIT :n
    Index("ix_link_clicks_total_user_id_clicks_link_id", "user_id", "clicks", "link_id"),
    **WITHOUT_ROWID,
)

link_breakdowns_daily = Table(
    "link_breakdowns_daily",
    metadata,
    # Top-N per dimension: WHERE link_id = :id AND dimension = :d AND day >= :from
    # AND day < :to GROUP BY value, a range of the primary key: the dimension comes
    # before the day, so one dimension's rows over 90 days are contiguous. People's
    # clicks only, except for dimension "bot" (bots by name).
    Column("link_id", BigInteger, primary_key=True),
    Column("dimension", String(10), primary_key=True),
    Column("day", UTCDateTime, primary_key=True),
    Column("value", String(255), primary_key=True),
    Column("clicks", BigInteger, nullable=False),
    **WITHOUT_ROWID,
)

# A random salt per UTC day for the visitor hash, shared by every kurz process (with
# salts of their own, two processes would count one visitor twice). A day's row is
# deleted when the day is over, and with it any way to link a hash to an address.
visitor_salts = Table(
    "visitor_salts",
    metadata,
    # Days since the epoch (UTC).
    Column("day", Integer, primary_key=True),
    Column("salt", LargeBinary(32), nullable=False),
)

# How far a periodic sweep over links has got, for sweeps that must see each link once
# (kurz.links.scheduled's announcement of expiries): the last (at, link id) it passed.
link_sweeps = Table(
    "link_sweeps",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("link_id", BigInteger, nullable=False),
)

# Webhooks (kurz.webhooks, docs/webhooks.md, ADR 0021): the endpoints users register,
# and one delivery per event and endpoint, each sent by a job of kurz.jobs.
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("user_id", BigId, ForeignKey("users.id"), nullable=False),
    Column("url", Text, nullable=False),
    Column("description", String(200), nullable=False, server_default=text("''")),
    # The event types it receives, each between spaces (" link.created link.deleted "),
    # so that "events LIKE '% link.created %'" picks the endpoints an event goes to.
    Column("events", Text, nullable=False),
    Column("enabled", Boolean, nullable=False),
    # Not the signing secret: what it is derived from with KURZ_WEBHOOK_KEY (ADR 0021).
    # A rotation draws a new nonce, and may keep the previous one signing until a time.
    Column("secret_nonce", String(64), nullable=False),
    Column("previous_nonce", String(64), nullable=True),
    Column("previous_until", UTCDateTime, nullable=True),
    # Clicks are sent in rounds, at most one a second (kurz.webhooks.clicks): the round
    # now gathering (a job's unique key names it) and when the last was collected.
    Column("clicks_round", BigInteger, nullable=False, server_default=text("0")),
    Column("clicks_collected_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # A user's endpoints, newest first, by keyset: WHERE user_id = :u AND id < :cursor.
    Index("ix_webhook_endpoints_user_id_id", "user_id", "id"),
    sqlite_autoincrement=True,
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "endpoint_id",
        BigId,
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"),
        nullable=False,
    ),
    # The webhook-id header: the same on every attempt and redelivery, for receivers to
    # de-duplicate by. The delivery job's payload names it.
    Column("message_id", String(40), nullable=False),
    Column("event", String(40), nullable=False),
    # The body sent, byte for byte (the signature covers it): JSON.
    Column("payload", Text, nullable=False),
    # The job sending it now, or that sent it last (not a foreign key: jobs are a
    # library's table). Its state says whether the delivery is pending or dead.
    Column("job_id", BigInteger, nullable=True),
    # Attempts whose outcome was recorded (a worker killed mid-send records none).
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_status", SmallInteger, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("last_attempt_at", UTCDateTime, nullable=True),
    Column("delivered_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    # The job finds its delivery by the message id.
    Index("uq_webhook_deliveries_message_id", "message_id", unique=True),
    # An endpoint's deliveries, newest first, by keyset; and deleted with it.
    Index("ix_webhook_deliveries_endpoint_id_id", "endpoint_id", "id"),
    sqlite_autoincrement=True,
)

# Clicks recorded for an endpoint and not yet sent: a row per endpoint per batch of
# clicks, written in the batch's transaction, taken by the next round's job.
webhook_pending_clicks = Table(
    "webhook_pending_clicks",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "endpoint_id",
        BigId,
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"),
        nullable=False,
    ),
    # A JSON array of clicks (kurz.webhooks.clicks), and how many it holds.
    Column("clicks", Text, nullable=False),
    Column("count", Integer, nullable=False),
    # A round takes an endpoint's oldest rows first: WHERE endpoint_id = :e ORDER BY id.
    Index("ix_webhook_pending_clicks_endpoint_id_id", "endpoint_id", "id"),
    sqlite_autoincrement=True,
)

# Imports (kurz.imports, docs/imports.md, ADR 0022): each import a row, run by a job of
# kurz.jobs a page at a time; each page is one transaction that writes its links, their
# report rows, and the import's new position and counts, so that a worker killed in the
# middle goes on from the last page written, with no link lost or made twice.
imports = Table(
    "imports",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    # Whose the import is, and whose the links it makes are.
    Column("user_id", BigId, ForeignKey("users.id"), nullable=False),
    # Who started it (an admin may import for another user).
    Column("started_by_user_id", BigId, nullable=True),
    # The source kind (kurz.imports.sources.SourceKind.name: csv, bitly-csv, bitly, ...)
    # and what it needs besides a file (JSON: a database URL, an API's address and
    # token). The settings hold secrets, so they are cleared when the import ends.
    Column("kind", String(40), nullable=False),
    Column("settings", Text, nullable=True),
    Column("filename", String(255), nullable=True),
    # What a taken alias does: skip, rename or fail (kurz.imports.sources.OnConflict).
    Column("on_conflict", String(10), nullable=False),
    # The host of the domain the links answer on when the source names none; NULL: the
    # default domain.
    Column("domain", String(253), nullable=True),
    # queued, running, finished or failed.
    Column("status", String(10), nullable=False),
    # Where the source goes on from (its Page.position after the last page written).
    Column("position", Text, nullable=True),
    # Links the source says it holds, if it knows (for progress); NULL: unknown.
    Column("total", BigInteger, nullable=True),
    # Links read so far, and of them imported, skipped and failed; clicks carried over.
    Column("read", BigInteger, nullable=False, server_default=text("0")),
    Column("imported", BigInteger, nullable=False, server_default=text("0")),
    Column("skipped", BigInteger, nullable=False, server_default=text("0")),
    Column("failed", BigInteger, nullable=False, server_default=text("0")),
    Column("clicks", BigInteger, nullable=False, server_default=text("0")),
    # Why a failed import stopped.
    Column("error", Text, nullable=True),
    Column("job_id", BigInteger, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    # A user's imports, newest first, by keyset: WHERE user_id = :u AND id < :cursor.
    Index("ix_imports_user_id_id", "user_id", "id"),
    sqlite_autoincrement=True,
)

# An uploaded file, kept in pieces of at most 1 MiB until its import ends, so that any
# worker can run the import and a restarted one can read it again.
import_files = Table(
    "import_files",
    metadata,
    Column("import_id", BigInteger, ForeignKey("imports.id", ondelete="CASCADE"), primary_key=True),
    Column("piece", Integer, primary_key=True),
    Column("data", LargeBinary, nullable=False),
)

# The report: a row per link read (imported, renamed, skipped or failed, and why), in
# the order read: WHERE import_id = :i AND n > :after ORDER BY n.
import_rows = Table(
    "import_rows",
    metadata,
    Column("import_id", BigInteger, ForeignKey("imports.id", ondelete="CASCADE"), primary_key=True),
    Column("n", BigInteger, primary_key=True),
    # Where the source has it ("line 12", "bit.ly/3xYz"), and its id there.
    Column("place", String(300), nullable=False),
    Column("source_id", String(400), nullable=True),
    # imported, renamed, skipped or failed.
    Column("outcome", String(10), nullable=False),
    # The link's code in kurz (imported or renamed; skipped: the link imported before).
    Column("code", String(64), nullable=True),
    Column("reason", Text, nullable=True),
    **WITHOUT_ROWID,
)

# Where an imported link came from: its source (kurz.imports.sources.SourceKind.source)
# and its id there. Importing the same source again makes nothing new: a link whose
# (user, source, source id) is here is skipped. `import_id`: the import that made it,
# which alone may add its statistics (a second run adds no clicks twice). The page's
# source ids lead the key (WHERE source_id IN (...) AND source = :s AND user_id = :u):
# with user and source first, PostgreSQL, whose statistics of a table an import is
# filling are stale, read every row of the user's source and filtered the ids, a page
# costing more with every page (100,000 rows: 88 s instead of 28).
link_sources = Table(
    "link_sources",
    metadata,
    Column("link_id", BigInteger, primary_key=True),
    Column("user_id", BigInteger, nullable=False),
    Column("source", String(40), nullable=False),
    Column("source_id", String(400), nullable=False),
    Column("import_id", BigInteger, nullable=False),
    Index(
        "uq_link_sources_source_id_source_user_id", "source_id", "source", "user_id", unique=True
    ),
)
