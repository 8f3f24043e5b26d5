"""REST endpoint for the audit log: admins read account events, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import WithJsonSchema

from kurz.accounts.audit import EVENTS
from kurz.accounts.audit_log import AuditLog, AuditPagination
from kurz.auth.views import Admin
from kurz.dates import DateTime
from kurz.deps import part
from kurz.openapi import AUTHENTICATED, answer, problem, responses

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])
AuditDep = Annotated[AuditLog, part("audit")]

_DESCRIPTION = """
Account events (sign-ins and failed sign-ins, keys made and revoked, invitations, role
changes, users disabled and deleted), newest first, a page at a time: pass a response's
`next_cursor` as `cursor` for the next. Events are kept for KURZ_AUDIT_RETENTION
(180 days), then purged.

Each entry names who did it (`actor`: a user, and the API key if one was used) and whom
it concerns (`user`); a user's `email` is null once the user is deleted.
"""

_MAX_ID = 2**63 - 1  # a BIGINT
# Documented as the names EVENTS holds; checked by AuditLog.page, whose 422 lists them.
EventName = Annotated[str, WithJsonSchema({"type": "string", "enum": sorted(EVENTS)})]


@router.get(
    "",
    operation_id="listAuditEvents",
    summary="Read the audit log (admin)",
    description=_DESCRIPTION,
    responses=responses(
        {
            200: answer("A page of events"),
            403: problem("The caller lacks the `admin` scope"),
            422: problem("A malformed limit, cursor, event, user or time, or until before since"),
        },
        AUTHENTICATED,
        limited=True,
    ),
)
async def list_audit_events(
    _admin: Admin,
    audit: AuditDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    event: Annotated[
        list[EventName] | None,
        Query(description="Only these events (repeat the parameter for several)."),
    ] = None,
    user: Annotated[
        int | None,
        Query(ge=1, le=_MAX_ID, description="Only events done by or to this user (its id)."),
    ] = None,
    since: Annotated[
        DateTime | None, Query(description="From this time (inclusive), RFC 3339 with an offset.")
    ] = None,
    until: Annotated[
        DateTime | None, Query(description="Before this time (exclusive), RFC 3339 with an offset.")
    ] = None,
) -> AuditPagination:
    return await audit.page(
        limit=limit, cursor=cursor, events=event or (), user=user, since=since, until=until
    )
