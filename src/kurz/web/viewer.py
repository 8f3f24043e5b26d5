"""Who is looking at a page: the signed-in user, by the session cookie; and the route
class that turns what a page's use case refuses into a page rather than problem+json.

A page that needs a signed-in user takes `ViewerDep`. Without a live session the
browser is sent to the sign-in page, which sends it back afterwards; a form posted
without the session's CSRF token (kurz.auth.cookies) is refused with a page and
changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute

from kurz.accounts.session_store import SessionUser, csrf_token
from kurz.auth.cookies import CSRF_FIELD, cookie_name, current_session, session_principal
from kurz.auth.models import Principal
from kurz.auth.views import AccessDep, SessionsDep, SettingsDep
from kurz.errors import Problem
from kurz.web.render import VIEWER, message

SIGN_IN = "/_/signin"


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in user a page is for."""

    principal: Principal
    user: SessionUser
    # Every form of the page carries it as `csrf_token` (CSRF_FIELD).
    csrf: str
    csrf_field: str = CSRF_FIELD

    @property
    def is_admin(self) -> bool:
        return self.principal.is_admin


class SignInNeeded(Exception):
    """No live session: the page answers with a redirect to the sign-in page."""


def back_to(request: Request) -> str:
    """Where the sign-in page sends the browser afterwards: this page, by path."""
    path = request.url.path
    if request.url.query:
        path += "?" + request.url.query
    return path


def sign_in_page(next_path: str = "") -> str:
    return SIGN_IN + (f"?next={quote(next_path, safe='/')}" if safe_next(next_path) else "")


def safe_next(path: str) -> bool:
    """A path of kurz's own web app (never another site: '//host' and '/\\host' are)."""
    return path.startswith("/_/") and "\\" not in path and not path.startswith("/_//")


async def signed_in(
    request: Request, access: AccessDep, sessions: SessionsDep, settings: SettingsDep
) -> Viewer:
    session_id = request.cookies.get(cookie_name(settings))
    if session_id is None:
        raise SignInNeeded
    try:
        principal = await session_principal(
            request, session_id, sessions=sessions, limits=access.limits
        )
    except Problem as problem:
        if problem.status == 401:
            raise SignInNeeded from None
        raise
    user = current_session(request)
    assert user is not None
    viewer = Viewer(principal, user, csrf_token(session_id))
    request.scope[VIEWER] = viewer
    return viewer


ViewerDep = Annotated[Viewer, Depends(signed_in)]


class PageRoute(APIRoute):
    """A route of the web app: a refusal (a Problem a use case raised, or a malformed
    query) becomes a page with its status, and no session a redirect to sign in."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handle(request)
            except SignInNeeded:
                if request.method in {"GET", "HEAD"}:
                    return RedirectResponse(sign_in_page(back_to(request)), 303)
                # A form from a session that has since ended: sign in, then post again.
                return RedirectResponse(sign_in_page(), 303)
            except Problem as problem:
                return refused(request, problem)
            except RequestValidationError:
                return message(
                    request,
                    "Bad request",
                    "This address's query is malformed. Go back and try again.",
                    400,
                    error=True,
                )
            finally:
                # A posted form's files (on disk past 1 MiB), read by the CSRF check or
                # the page, also when the check refused it.
                await request.close()

        return page


def refused(request: Request, problem: Problem) -> Response:
    """What a page shows for a Problem: its title and detail, with its status."""
    more = ""
    if problem.slug == "csrf-failed":
        more = "The form came from an earlier page or session. Reload the page and try again."
    return message(
        request, problem.title, problem.detail, problem.status, more=more, error=True,
        headers=problem.headers,
    )  # fmt: skip
