"""Signing in and out, the first page anyone sees (/), and the account page where a
signed-in user changes their password."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from kurz.accounts.passwords import MAX_LENGTH, MIN_LENGTH
from kurz.accounts.service import Users
from kurz.auth.cookies import clear_cookie, cookie_name, set_cookie
from kurz.auth.views import AccessDep, SessionsDep, SettingsDep
from kurz.deps import part
from kurz.errors import Problem
from kurz.web.forms import posted
from kurz.web.render import render
from kurz.web.viewer import SIGN_IN, PageRoute, ViewerDep, safe_next

router = APIRouter(include_in_schema=False, route_class=PageRoute)
UsersDep = Annotated[Users, part("users")]
HOME = "/_/dashboard"


@router.get("/")
async def root(request: Request, settings: SettingsDep) -> Response:
    """The dashboard for a signed-in browser, else the sign-in page (a domain's root
    redirect, when it has one, is answered before this: kurz.app)."""
    if request.cookies.get(cookie_name(settings)) is None:
        return RedirectResponse(SIGN_IN, 303)
    return RedirectResponse(HOME, 303)


def _signin_page(
    request: Request,
    *,
    next_path: str,
    email: str = "",
    error: str = "",
    status: int = 200,
    headers: dict[str, str] | None = None,
    set_up: bool = True,
) -> Response:
    return render(
        request,
        "signin.html",
        status,
        headers,
        title="Sign in",
        next_path=next_path if safe_next(next_path) else "",
        email=email,
        error=error,
        set_up=set_up,
    )


@router.get("/_/signin")
async def signin_page(
    request: Request,
    users: UsersDep,
    next_path: Annotated[str, Query(alias="next", max_length=2_000)] = "",
) -> Response:
    return _signin_page(request, next_path=next_path, set_up=not await users.needs_setup())


@router.post("/_/signin")
async def signin(
    request: Request, access: AccessDep, sessions: SessionsDep, settings: SettingsDep
) -> Response:
    form = await posted(request)
    email, next_path = form.first("email")[:1_000], form.first("next")
    if request.headers.get("sec-fetch-site") == "cross-site":
        # Login CSRF: another site's form would sign this browser in as someone else
        # (its owner), whose links the victim would then fill. No session exists yet to
        # hold a token, so the browser's own word on where the form came from decides.
        return _signin_page(
            request,
            next_path="",
            error="This sign-in form came from another site. Sign in here instead.",
            status=403,
        )
    try:
        session_id, _ = await sessions.sign_in(
            email,
            form.first("password")[:MAX_LENGTH],
            ip=access.limits.client_ip(request.scope),
            user_agent=request.headers.get("user-agent"),
            replacing=request.cookies.get(cookie_name(settings)),
        )
    except Problem as problem:
        return _signin_page(
            request,
            next_path=next_path,
            email=email,
            error=problem.detail,
            status=problem.status,
            headers=problem.headers,
        )
    response = RedirectResponse(next_path if safe_next(next_path) else HOME, 303)
    set_cookie(response, settings, session_id)
    return response


@router.post("/_/signout")
async def signout(
    request: Request,
    viewer: ViewerDep,
    access: AccessDep,
    sessions: SessionsDep,
    settings: SettingsDep,
) -> Response:
    await sessions.sign_out(
        request.cookies[cookie_name(settings)], ip=access.limits.client_ip(request.scope)
    )
    response = RedirectResponse(SIGN_IN + "?signed_out=1", 303)
    clear_cookie(response, settings)
    return response


def _account_page(
    request: Request, *, errors: dict[str, str] | None = None, done: bool = False, status: int = 200
) -> Response:
    return render(
        request,
        "account.html",
        status,
        title="Your account",
        nav="account",
        errors=errors or {},
        done=done,
        min_length=MIN_LENGTH,
    )


@router.get("/_/account")
async def account(request: Request, viewer: ViewerDep) -> Response:
    return _account_page(request, done=request.query_params.get("changed") == "1")


@router.post("/_/account")
async def change_password(
    request: Request,
    viewer: ViewerDep,
    access: AccessDep,
    sessions: SessionsDep,
    settings: SettingsDep,
) -> Response:
    form = await posted(request)
    new = form.first("new_password")[:MAX_LENGTH]
    if new != form.first("new_password_again"):
        return _account_page(
            request, errors={"new_password_again": "The two passwords differ."}, status=422
        )
    try:
        fresh = await sessions.change_password(
            viewer.principal.user_id,
            form.first("current_password")[:MAX_LENGTH],
            new,
            ip=access.limits.client_ip(request.scope),
            user_agent=request.headers.get("user-agent"),
            session_id=request.cookies[cookie_name(settings)],
        )
    except Problem as problem:
        errors = {
            _ACCOUNT_FIELDS.get(str(e.get("field")), "new_password"): str(e.get("message"))
            for e in problem.errors or ()
        } or {"current_password": problem.detail}
        return _account_page(request, errors=errors, status=problem.status)
    response = RedirectResponse("/_/account?changed=1", 303)
    if fresh is not None:
        set_cookie(response, settings, fresh[0])
    return response


_ACCOUNT_FIELDS = {"current_password": "current_password", "new_password": "new_password"}
