"""REST endpoints for users: an admin's (list, invite, change, disable, delete, reset
links), and the three one-time links' (accept an invitation, reset a password, set up
the first admin), where the token in the path is the credential."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from kurz.accounts.models import (
    InvitationAccept,
    InvitationCreated,
    InvitationRead,
    LinksFate,
    PasswordReset,
    ResetLink,
    Role,
    SetupCreate,
    UserInvite,
    UserPagination,
    UserRead,
    UserUpdate,
)
from kurz.accounts.service import Actor, Users
from kurz.auth.models import Principal
from kurz.auth.views import Admin
from kurz.deps import part
from kurz.limits import ServiceLimits
from kurz.openapi import AUTHENTICATED, TOO_LARGE, Answers, answer, problem, responses

router = APIRouter(tags=["users"])

UsersDep = Annotated[Users, part("users")]
LimitsDep = Annotated[ServiceLimits, part("limits")]

USERS = "/api/v1/users"
_ADMIN_ONLY: Answers = {403: problem("The key (or its user's role) lacks the `admin` scope")}
_NO_USER: Answers = {404: problem("No user with this id")}
_MALFORMED = problem("Malformed JSON or Content-Length")
# The routes a one-time link's holder calls: no API key, so no `api` limit; a bad token
# counts against the client's `auth-fail` limit, as a wrong key does.
_TOKEN: Answers = {
    410: problem("The link has expired, was used already, or never existed"),
    429: problem("The client's `auth-fail` limit is used up, after bad links", "Retry-After"),
    503: problem("The database does not answer; nothing was changed", "Retry-After"),
}


def _actor(principal: Principal, limits: ServiceLimits, request: Request) -> Actor:
    return Actor(
        user_id=principal.user_id, key_id=principal.key_id, ip=limits.client_ip(request.scope)
    )


@router.get(
    USERS,
    operation_id="listUsers",
    summary="List users, oldest first",
    responses=responses(
        {200: answer("A page of users"), 422: problem("A malformed limit, cursor or filter")},
        _ADMIN_ONLY,
        AUTHENTICATED,
        limited=True,
    ),
)
async def list_users(
    _admin: Admin,
    users: UsersDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=32)] = None,
    role: Role | None = None,
    disabled: bool | None = None,
) -> UserPagination:
    return await users.list_(limit=limit, cursor=cursor, role=role, disabled=disabled)


@router.post(
    USERS,
    status_code=201,
    operation_id="inviteUser",
    summary="Invite a person: the 201 carries the one-time link to pass on",
    description="The account is made when the invitation is accepted, with the password "
    "its holder chooses (`POST /api/v1/invitations/{token}`, or the page at "
    "`invitation_url`), so the answer describes the invitation: no user id yet. A new "
    "invitation to the same address replaces an unused one.",
    response_model=InvitationCreated,
    responses=responses(
        {
            201: answer("The invitation, and its link (shown this once)"),
            400: _MALFORMED,
            409: problem("A user has this email address already (`email-taken`)"),
            422: problem("A malformed email address or an unknown role"),
        },
        _ADMIN_ONLY,
        TOO_LARGE,
        AUTHENTICATED,
        limited=True,
    ),
)
async def invite_user(
    invite: UserInvite,
    admin: Admin,
    users: UsersDep,
    limits: LimitsDep,
    request: Request,
) -> InvitationCreated:
    return await users.invite(invite=invite, actor=_actor(admin, limits, request))


@router.get(
    "/api/v1/invitations",
    operation_id="listInvitations",
    summary="List the invitations not yet accepted nor expired",
    responses=responses(
        {200: answer("The pending invitations, oldest first")},
        _ADMIN_ONLY,
        AUTHENTICATED,
        limited=True,
    ),
)
async def list_invitations(_admin: Admin, users: UsersDep) -> list[InvitationRead]:
    return await users.invitations()


_ONE = USERS + "/{user_id}"
_BAD_ID = problem("A malformed user id")


@router.get(
    _ONE,
    operation_id="getUser",
    summary="Get a user",
    responses=responses(
        {200: answer("The user"), 422: _BAD_ID}, _NO_USER, _ADMIN_ONLY, AUTHENTICATED, limited=True
    ),
)
async def get_user(user_id: int, _admin: Admin, users: UsersDep) -> UserRead:
    return await users.get(user_id=user_id)


@router.patch(
    _ONE,
    operation_id="updateUser",
    summary="Change a user's role or name, or disable or enable them",
    description="Disabling ends the user's sessions at once and refuses their API keys "
    "from their next request on, in every process (with KURZ_AUTH_CACHE_TTL set, a "
    "process that checked a key lately trusts it that much longer).",
    responses=responses(
        {
            200: answer("The changed user"),
            400: _MALFORMED,
            409: problem("The change would leave no enabled admin (`last-admin`)"),
            422: problem("A malformed user id or field"),
        },
        _NO_USER,
        _ADMIN_ONLY,
        TOO_LARGE,
        AUTHENTICATED,
        limited=True,
    ),
)
async def update_user(
    user_id: int,
    change: UserUpdate,
    admin: Admin,
    users: UsersDep,
    limits: LimitsDep,
    request: Request,
) -> UserRead:
    return await users.update(user_id=user_id, change=change, actor=_actor(admin, limits, request))


_LINKS = "What happens to the user's links: `reassign` (with `to`) or `delete`."


@router.delete(
    _ONE,
    status_code=204,
    operation_id="deleteUser",
    summary="Delete a user; say what happens to their links",
    description="`links=reassign&to={id}` gives every link of the user to user `to`; "
    "`links=delete` deletes them (their codes are never handed out again). The user's "
    "API keys, sessions and one-time links go with them.",
    responses=responses(
        {
            204: answer("Deleted"),
            409: problem(
                "The last enabled admin (`last-admin`), or the caller's own account "
                "(`cannot-delete-self`)"
            ),
            422: problem("No `links` choice, or `to` missing, unknown or not allowed"),
        },
        _NO_USER,
        _ADMIN_ONLY,
        AUTHENTICATED,
        limited=True,
    ),
)
async def delete_user(
    user_id: int,
    admin: Admin,
    users: UsersDep,
    limits: LimitsDep,
    request: Request,
    links: Annotated[LinksFate | None, Query(description=_LINKS)] = None,
    to: Annotated[int | None, Query(description="Who gets the links (`links=reassign`).")] = None,
) -> Response:
    await users.delete(
        user_id=user_id, links_fate=links, to=to, actor=_actor(admin, limits, request)
    )
    return Response(status_code=204)


@router.post(
    _ONE + "/reset-link",
    status_code=201,
    operation_id="createResetLink",
    summary="Make a one-time link for the user to choose a new password",
    description="Valid for 7 days; a new one replaces an unused one. Using it ends the "
    "user's sessions. It also gives a password to a user who has none.",
    response_model=ResetLink,
    responses=responses(
        {201: answer("The link (shown this once)"), 422: _BAD_ID},
        _NO_USER,
        _ADMIN_ONLY,
        AUTHENTICATED,
        limited=True,
    ),
)
async def create_reset_link(
    user_id: int, admin: Admin, users: UsersDep, limits: LimitsDep, request: Request
) -> ResetLink:
    return await users.reset_link(user_id=user_id, actor=_actor(admin, limits, request))


@router.post(
    "/api/v1/invitations/{token}",
    status_code=201,
    operation_id="acceptInvitation",
    summary="Accept an invitation: make the account (no API key; the token is the credential)",
    response_model=UserRead,
    responses=responses(
        {
            201: answer("The new user"),
            400: _MALFORMED,
            409: problem("The address got an account meanwhile (`email-taken`)"),
            422: problem("A password too short or too long, or a malformed display name"),
        },
        _TOKEN,
        TOO_LARGE,
    ),
)
async def accept_invitation(
    token: str, accept: InvitationAccept, users: UsersDep, limits: LimitsDep, request: Request
) -> UserRead:
    return await users.accept(token=token, accept=accept, ip=limits.client_ip(request.scope))


@router.post(
    "/api/v1/password-resets/{token}",
    status_code=204,
    operation_id="resetPassword",
    summary="Set a new password with a reset link (no API key; the token is the credential)",
    description="Every session of the user ends.",
    responses=responses(
        {
            204: answer("The password is set"),
            400: _MALFORMED,
            422: problem("A password too short or too long"),
        },
        _TOKEN,
        TOO_LARGE,
    ),
)
async def reset_password(
    token: str, reset: PasswordReset, users: UsersDep, limits: LimitsDep, request: Request
) -> Response:
    await users.reset(token=token, reset=reset, ip=limits.client_ip(request.scope))
    return Response(status_code=204)


@router.post(
    "/api/v1/setup/{token}",
    status_code=201,
    operation_id="completeSetup",
    summary="Make the first admin with the link `kurz serve` printed (no API key)",
    description="Only while no admin can sign in; the link is valid for an hour, once.",
    response_model=UserRead,
    responses=responses(
        {
            201: answer("The first admin"),
            400: _MALFORMED,
            409: problem("A user has this email address already (`email-taken`)"),
            422: problem("A malformed email address, a password too short or too long"),
        },
        _TOKEN,
        TOO_LARGE,
    ),
)
async def complete_setup(
    token: str, admin: SetupCreate, users: UsersDep, limits: LimitsDep, request: Request
) -> UserRead:
    return await users.setup(token=token, admin=admin, ip=limits.client_ip(request.scope))
