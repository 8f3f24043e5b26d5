"""The pages behind the one-time links kurz hands out: /_/setup/, /_/invite/ and
/_/reset/ followed by the token. Plain HTML forms posted back to the same address, so
they work without JavaScript; errors are shown beside the field they concern.

Every path here has a second slash, so none can be a short code (kurz.links.codes).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ValidationError

from kurz.accounts.models import InvitationAccept, PasswordReset, SetupCreate
from kurz.accounts.passwords import MIN_LENGTH
from kurz.accounts.service import Users
from kurz.accounts.tokens import Purpose, Token
from kurz.deps import part
from kurz.errors import Problem
from kurz.limits import ServiceLimits
from kurz.web.render import render

router = APIRouter(prefix="/_", include_in_schema=False)

UsersDep = Annotated[Users, part("users")]
LimitsDep = Annotated[ServiceLimits, part("limits")]

_MAX_FIELDS = 20


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    label: str
    type: str = "text"
    autocomplete: str = "off"
    required: bool = True
    minlength: int | None = None
    hint: str = ""
    value: str = ""
    error: str = ""


_EMAIL = Field("email", "Email address", "email", "username")
_NAME = Field("display_name", "Name (optional)", autocomplete="name", required=False)
_PASSWORD = Field(
    "password", "Password", "password", "new-password", minlength=MIN_LENGTH,
    hint=f"At least {MIN_LENGTH} characters.",
)  # fmt: skip
_AGAIN = Field("password_again", "Password again", "password", "new-password")


@dataclass(frozen=True, slots=True)
class Form:
    """One link's page: its form, what its answer is, and what follows success."""

    title: str
    intro: str
    submit: str
    fields: tuple[Field, ...]
    model: type[BaseModel]
    done_title: str
    # What a spent link's page adds: how to get a new one.
    renew: str


FORMS: dict[Purpose, Form] = {
    "setup": Form(
        "Set up kurz",
        "Choose the first admin's email address and password.",
        "Create the admin",
        (_EMAIL, _NAME, _PASSWORD, _AGAIN),
        SetupCreate,
        "kurz is set up",
        "While no admin can sign in, kurz serve prints a new setup link each time it starts.",
    ),
    "invite": Form(
        "Join kurz",
        "",
        "Create my account",
        (_NAME, _PASSWORD, _AGAIN),
        InvitationAccept,
        "Welcome to kurz",
        "Ask an admin for a new invitation.",
    ),
    "reset": Form(
        "Choose a new password",
        "Every place you are signed in will be signed out.",
        "Set the password",
        (_PASSWORD, _AGAIN),
        PasswordReset,
        "Your password is set",
        "Ask an admin for a new reset link.",
    ),
}


def _page(
    template: str, status: int, headers: Mapping[str, str] | None = None, **context: Any
) -> HTMLResponse:
    return render(None, template, status, headers, **context)


def _refusal(form: Form, problem: Problem) -> HTMLResponse:
    """A link that is no good (410), too many bad ones (429), or the database (503)."""
    more = form.renew if problem.status == 410 else ""
    return _page(
        "message.html",
        problem.status,
        problem.headers,
        title=problem.title,
        message=problem.detail,
        more=more,
        error=True,
    )


def _form_page(
    form: Form,
    action: str,
    *,
    intro: str = "",
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    error: str = "",
    status: int = 200,
) -> HTMLResponse:
    values = values or {}
    errors = errors or {}
    fields = [
        replace(
            field,
            # A password is never sent back to the browser.
            value="" if field.type == "password" else values.get(field.name, ""),
            error=errors.get(field.name, ""),
        )
        for field in form.fields
    ]
    return _page(
        "form.html",
        status,
        title=form.title,
        intro=intro or form.intro,
        action=action,
        fields=fields,
        submit=form.submit,
        error=error,
    )


async def _posted(request: Request) -> dict[str, str]:
    """The form's fields (application/x-www-form-urlencoded), each its first value."""
    body = (await request.body()).decode("utf-8", errors="replace")
    try:
        pairs = parse_qsl(body, keep_blank_values=True, max_num_fields=_MAX_FIELDS)
    except ValueError:
        return {}
    values: dict[str, str] = {}
    for name, value in pairs:
        values.setdefault(name, value)
    return values


def _checked(form: Form, values: Mapping[str, str]) -> tuple[BaseModel | None, dict[str, str]]:
    """The model the API takes, made from the form; or the errors, by field."""
    errors: dict[str, str] = {}
    if values.get("password", "") != values.get("password_again", ""):
        errors["password_again"] = "The two passwords differ."  # noqa: S105
    names = {field.name for field in form.fields} & set(form.model.model_fields)
    try:
        model = form.model.model_validate({name: values.get(name, "") for name in names})
    except ValidationError as exc:
        for found in exc.errors():
            name = str(found["loc"][0]) if found["loc"] else "password"
            message = str(found["msg"]).removeprefix("Value error, ")
            errors.setdefault(name, message)
        return None, errors
    return (None if errors else model), errors


async def _show(
    purpose: Purpose, token: str, request: Request, users: Users, limits: ServiceLimits
) -> HTMLResponse:
    form = FORMS[purpose]
    try:
        found = await users.check(token=token, purpose=purpose, ip=limits.client_ip(request.scope))
    except Problem as problem:
        return _refusal(form, problem)
    return _form_page(form, request.url.path, intro=_intro(found))


def _intro(token: Token) -> str:
    """What the page says first, if the link has something to say (whom it invites)."""
    if token.purpose != "invite":
        return ""
    return f"You are invited to kurz as {token.email} ({token.role}). Choose a password."


async def _submit(
    purpose: Purpose,
    token: str,
    request: Request,
    users: Users,
    limits: ServiceLimits,
    use: Callable[[BaseModel, str], Awaitable[str]],
) -> HTMLResponse:
    """Check the link, then the form, then `use` the link (with the form's model and the
    client's address; it says what the page shows then). A spent link says so before
    the form is judged."""
    form = FORMS[purpose]
    ip = limits.client_ip(request.scope)
    try:
        found = await users.check(token=token, purpose=purpose, ip=ip)
    except Problem as problem:
        return _refusal(form, problem)
    values = await _posted(request)
    model, errors = _checked(form, values)
    intro = _intro(found)
    if model is None:
        return _form_page(
            form, request.url.path, intro=intro, values=values, errors=errors, status=422
        )
    try:
        message = await use(model, ip)
    except Problem as problem:
        # Beside its field if the form has it (a taken address on the setup form); else
        # a page (a taken address on an invitation, whose form has no address field).
        shown = {field.name for field in form.fields}
        fields = {e["field"]: e["message"] for e in problem.errors or () if e["field"] in shown}
        if fields:
            return _form_page(
                form,
                request.url.path,
                intro=intro,
                values=values,
                errors=fields,
                status=problem.status,
            )
        return _refusal(form, problem)
    return _page("message.html", 200, title=form.done_title, message=message)


@router.get("/setup/{token}")
async def setup_page(token: str, request: Request, users: UsersDep, limits: LimitsDep) -> Response:
    return await _show("setup", token, request, users, limits)


@router.post("/setup/{token}")
async def setup(token: str, request: Request, users: UsersDep, limits: LimitsDep) -> Response:
    async def use(model: BaseModel, ip: str) -> str:
        assert isinstance(model, SetupCreate)
        admin = await users.setup(token=token, admin=model, ip=ip)
        return f"The admin {admin.email} is made; this link is spent."

    return await _submit("setup", token, request, users, limits, use)


@router.get("/invite/{token}")
async def invite_page(token: str, request: Request, users: UsersDep, limits: LimitsDep) -> Response:
    return await _show("invite", token, request, users, limits)


@router.post("/invite/{token}")
async def accept(token: str, request: Request, users: UsersDep, limits: LimitsDep) -> Response:
    async def use(model: BaseModel, ip: str) -> str:
        assert isinstance(model, InvitationAccept)
        user = await users.accept(token=token, accept=model, ip=ip)
        return f"Your account, {user.email}, is ready."

    return await _submit("invite", token, request, users, limits, use)


@router.get("/reset/{token}")
async def reset_page(token: str, request: Request, users: UsersDep, limits: LimitsDep) -> Response:
    return await _show("reset", token, request, users, limits)


@router.post("/reset/{token}")
async def reset(token: str, request: Request, users: UsersDep, limits: LimitsDep) -> Response:
    async def use(model: BaseModel, ip: str) -> str:
        assert isinstance(model, PasswordReset)
        await users.reset(token=token, reset=model, ip=ip)
        return "Your new password is set, and every earlier session has ended."

    return await _submit("reset", token, request, users, limits, use)
