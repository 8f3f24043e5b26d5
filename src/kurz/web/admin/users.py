"""Users (/_/admin/users): the list, invitations, a role change, disabling and enabling,
and reset links, over kurz.accounts.service.Users as /api/v1/users calls it. A one-time
link is shown on the answer page only; the service's guard rails (the last admin) are
a message on the page, never an error."""

from __future__ import annotations

from typing import Annotated, Final, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from kurz.accounts.models import Role, UserInvite, UserUpdate
from kurz.accounts.service import Actor, Users
from kurz.auth.models import MAX_ID
from kurz.auth.views import AccessDep
from kurz.deps import part
from kurz.errors import Problem
from kurz.web.admin.guard import AdminDep
from kurz.web.forms import as_problem, beside_fields, posted
from kurz.web.render import render
from kurz.web.viewer import PageRoute, Viewer

router = APIRouter(include_in_schema=False, route_class=PageRoute)
UsersDep = Annotated[Users, part("users")]
UserId = Annotated[int, Path(ge=1, le=MAX_ID)]

PAGE: Final = "/_/admin/users"
PAGE_SIZE: Final = 50
ROLES: Final[tuple[Role, ...]] = ("member", "admin")
Done = Literal["role", "disabled", "enabled"]
_DONE: Final[dict[Done, str]] = {
    "role": "{email} is now {article} {role}.",
    "disabled": "{email} is disabled: their sessions are ended and their API keys refused.",
    "enabled": "{email} is enabled again.",
}


def _actor(viewer: Viewer, access: AccessDep, request: Request) -> Actor:
    return Actor(user_id=viewer.principal.user_id, ip=access.limits.client_ip(request.scope))


async def _users_page(
    request: Request,
    users: Users,
    *,
    cursor: str | None = None,
    invite: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    notice: str = "",
    error: str = "",
    status: int = 200,
) -> Response:
    page = await users.list_(limit=PAGE_SIZE, cursor=cursor)
    return render(
        request,
        "admin/users.html",
        status,
        title="Users",
        nav="admin",
        wide=True,
        users=page.items,
        next_cursor=page.next_cursor,
        first_page=cursor is None,
        invitations=await users.invitations(),
        invite=invite or {"email": "", "role": "member"},
        errors=errors or {},
        roles=ROLES,
        notice=notice,
        error=error,
    )


@router.get(PAGE)
async def users_page(
    request: Request,
    viewer: AdminDep,
    users: UsersDep,
    cursor: Annotated[str | None, Query(max_length=32)] = None,
    done: Done | None = None,
    user: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Response:
    notice = ""
    if done is not None and user is not None:
        try:
            changed = await users.get(user_id=user)
        except Problem:
            changed = None
        if changed is not None:
            article = "an" if changed.role == "admin" else "a"
            notice = _DONE[done].format(email=changed.email, article=article, role=changed.role)
    return await _users_page(request, users, cursor=cursor, notice=notice)


@router.post(PAGE)
async def invite_user(
    request: Request, viewer: AdminDep, users: UsersDep, access: AccessDep
) -> Response:
    form = await posted(request)
    sent = {"email": form.first("email").strip(), "role": form.first("role", "member")}
    try:
        invited = await users.invite(
            invite=UserInvite.model_validate(sent), actor=_actor(viewer, access, request)
        )
    except (ValidationError, Problem) as exc:
        problem = as_problem(exc) if isinstance(exc, ValidationError) else exc
        if problem.status not in {409, 422}:
            raise
        errors = beside_fields(problem, ("email", "role")) or {"email": problem.detail}
        return await _users_page(request, users, invite=sent, errors=errors, status=problem.status)
    return render(
        request,
        "admin/link.html",
        201,
        title="Invitation made",
        nav="admin",
        intro=f"Send this link to {invited.email}: it makes their account, as {invited.role}, "
        "with the password they choose. It works once.",
        label="Invitation link",
        url=invited.invitation_url,
        expires_at=invited.invitation_expires_at,
    )


def _change(role: str, disabled: str) -> UserUpdate:
    """The change a user row's buttons ask for: a role, or disabled true or false."""
    sent: dict[str, object] = {}
    if role:
        sent["role"] = role
    if disabled:
        sent["disabled"] = disabled
    return UserUpdate.model_validate(sent)


@router.post(PAGE + "/{user_id}")
async def change_user(
    request: Request, user_id: UserId, viewer: AdminDep, users: UsersDep, access: AccessDep
) -> Response:
    form = await posted(request)
    role, disabled = form.first("role"), form.first("disabled")
    try:
        change = _change(role, disabled)
    except ValidationError as exc:
        raise as_problem(exc) from None
    try:
        await users.update(user_id=user_id, change=change, actor=_actor(viewer, access, request))
    except Problem as problem:
        if problem.status != 409:
            raise
        return await _users_page(request, users, error=problem.detail, status=409)
    done: Done = "role" if role else ("disabled" if change.disabled else "enabled")
    return RedirectResponse(f"{PAGE}?done={done}&user={user_id}", 303)


@router.post(PAGE + "/{user_id}/reset-link")
async def reset_link(
    request: Request, user_id: UserId, viewer: AdminDep, users: UsersDep, access: AccessDep
) -> Response:
    user = await users.get(user_id=user_id)
    made = await users.reset_link(user_id=user_id, actor=_actor(viewer, access, request))
    return render(
        request,
        "admin/link.html",
        201,
        title="Reset link made",
        nav="admin",
        intro=f"Send this link to {user.email}: it lets them choose a new password, and "
        "signs them out everywhere. It works once; an earlier reset link stops working.",
        label="Reset link",
        url=made.reset_url,
        expires_at=made.expires_at,
    )
