"""Background work on accounts: forgetting audit events past KURZ_AUDIT_RETENTION."""

from __future__ import annotations

from typing import Any

from kurz.accounts.audit_log import AuditLog
from kurz.jobs import Registry


def register(registry: Registry, *, audit: AuditLog) -> None:
    """Purge old audit events every hour."""

    @registry.job("purge-audit-events", timeout=1_800.0)
    async def purge_audit_events(_payload: dict[str, Any]) -> None:
        await audit.purge()

    registry.every("purge-audit-events", 3_600.0, "purge-audit-events")
