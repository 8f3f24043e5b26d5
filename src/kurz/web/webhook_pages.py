"""The webhooks pages (/_/webhooks): the viewer's endpoints, a form to add one (its
secret shown on the answer page only), one endpoint's deliveries with a button to
redeliver a dead (or delivered) one, and deleting an endpoint after a confirmation.
The same use cases as /api/v1/webhooks (kurz.webhooks.service); another user's
endpoint is a 404 page."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Final
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from kurz.deps import part
from kurz.errors import Problem
from kurz.web.forms import as_problem, beside_fields, posted
from kurz.web.render import render
from kurz.web.viewer import PageRoute, Viewer, ViewerDep
from kurz.webhooks.models import EVENT_HINTS, EVENTS, WebhookCreate
from kurz.webhooks.service import Webhooks

router = APIRouter(include_in_schema=False, route_class=PageRoute)
WebhooksDep = Annotated[Webhooks, part("webhooks")]
PAGE: Final = "/_/webhooks"
# Deliveries shown on an endpoint's page, newest first.
SHOWN: Final = 50
_FIELDS: Final = ("url", "events", "description")


@dataclass(slots=True)
class HookForm:
    """The add form as it was sent (or its defaults), and its errors by field."""

    url: str = ""
    events: list[str] = field(default_factory=lambda: ["link.created", "link.updated"])
    description: str = ""
    errors: dict[str, str] = field(default_factory=dict)
    error: str = ""


async def _list_page(
    request: Request,
    viewer: Viewer,
    webhooks: Webhooks,
    form: HookForm,
    *,
    status: int = 200,
    notice: str = "",
) -> Response:
    page = await webhooks.list_(principal=viewer.principal, limit=100, cursor=None)
    return render(
        request,
        "webhooks/list.html",
        status,
        title="Webhooks",
        nav="webhooks",
        wide=True,
        hooks=page.items,
        form=form,
        events=[(event, EVENT_HINTS[event]) for event in EVENTS],
        notice=notice,
    )


@router.get(PAGE)
async def webhooks_page(
    request: Request,
    viewer: ViewerDep,
    webhooks: WebhooksDep,
    deleted: Annotated[str | None, Query(max_length=2_000)] = None,
) -> Response:
    notice = f"The webhook to {deleted} is deleted: nothing more is sent to it." if deleted else ""
    return await _list_page(request, viewer, webhooks, HookForm(), notice=notice)


@router.post(PAGE)
async def add_webhook(request: Request, viewer: ViewerDep, webhooks: WebhooksDep) -> Response:
    sent = await posted(request)
    form = HookForm(
        url=sent.first("url").strip(),
        events=sent.all("events"),
        description=sent.first("description").strip(),
    )
    try:
        hook_in = WebhookCreate.model_validate(
            {"url": form.url, "events": form.events, "description": form.description}
        )
        created = await webhooks.create(principal=viewer.principal, webhook_in=hook_in)
    except (ValidationError, Problem) as exc:
        problem = as_problem(exc) if isinstance(exc, ValidationError) else exc
        if problem.status not in {409, 422}:
            raise
        form.errors = beside_fields(problem, _FIELDS)
        if not form.errors:
            form.error = problem.detail
        return await _list_page(request, viewer, webhooks, form, status=problem.status)
    return render(
        request,
        "webhooks/created.html",
        201,
        title="Your new webhook",
        nav="webhooks",
        hook=created,
        secret=created.secret,
    )


@router.get(PAGE + "/{webhook_id}")
async def webhook_page(
    request: Request,
    webhook_id: str,
    viewer: ViewerDep,
    webhooks: WebhooksDep,
    redelivered: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    hook = await webhooks.get(principal=viewer.principal, webhook_id=webhook_id)
    page = await webhooks.deliveries(
        principal=viewer.principal, webhook_id=webhook_id, limit=SHOWN, cursor=None
    )
    notice = f"Delivery {redelivered} is queued again." if redelivered else ""
    return render(
        request,
        "webhooks/show.html",
        title="Webhook",
        nav="webhooks",
        wide=True,
        hook=hook,
        deliveries=page.items,
        notice=notice,
    )


@router.post(PAGE + "/{webhook_id}/deliveries/{delivery_id}/redeliver")
async def redeliver(
    webhook_id: str, delivery_id: str, viewer: ViewerDep, webhooks: WebhooksDep
) -> Response:
    again = await webhooks.redeliver(
        principal=viewer.principal, webhook_id=webhook_id, delivery_id=delivery_id
    )
    return RedirectResponse(f"{PAGE}/{again.webhook}?redelivered={again.id}", 303)


@router.get(PAGE + "/{webhook_id}/delete")
async def delete_page(
    request: Request, webhook_id: str, viewer: ViewerDep, webhooks: WebhooksDep
) -> Response:
    hook = await webhooks.get(principal=viewer.principal, webhook_id=webhook_id)
    return render(
        request, "webhooks/delete.html", title="Delete a webhook", nav="webhooks", hook=hook
    )


@router.post(PAGE + "/{webhook_id}/delete")
async def delete_webhook(webhook_id: str, viewer: ViewerDep, webhooks: WebhooksDep) -> Response:
    hook = await webhooks.get(principal=viewer.principal, webhook_id=webhook_id)
    await webhooks.delete(principal=viewer.principal, webhook_id=webhook_id)
    return RedirectResponse(f"{PAGE}?{urlencode({'deleted': hook.url})}", 303)
