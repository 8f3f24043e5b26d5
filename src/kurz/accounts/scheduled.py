"""Background work on accounts: forgetting audit events past KURZ_AUDIT_RETENTION,
ended sessions and spent one-time links."""

from __future__ import annotations

from typing import Any

from kurz.accounts.audit_log import AuditLog
from kurz.accounts.service import Users
from kurz.accounts.sessions import Sessions
from kurz.jobs import Registry


def register(registry: Registry, *, audit: AuditLog, sessions: Sessions, users: Users) -> None:
    """Purge old audit events every hour; ended sessions and spent one-time links
    (setup, invitations, resets) once a day. A request with
    an ended session deletes its row at once; the purge forgets those that no request
    came back for."""

    @registry.job("purge-audit-events", timeout=1_800.0)
    async def purge_audit_events(_payload: dict[str, Any]) -> None:
        await audit.purge()

    registry.every("purge-audit-events", 3_600.0, "purge-audit-events")

    @registry.job("purge-sessions", timeout=1_800.0)
    async def purge_sessions(_payload: dict[str, Any]) -> None:
        await sessions.purge()

    registry.every("purge-sessions", 86_400.0, "purge-sessions")

    @registry.job("purge-one-time-links", timeout=1_800.0)
    async def purge_one_time_links(_payload: dict[str, Any]) -> None:
        await users.purge_spent_links()

    registry.every("purge-one-time-links", 86_400.0, "purge-one-time-links")
