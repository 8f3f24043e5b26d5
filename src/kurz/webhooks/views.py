"""REST endpoints for webhooks: parse, call kurz.webhooks.service, render."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from kurz.auth.views import WebhooksScope
from kurz.deps import part
from kurz.openapi import AUTHENTICATED, TOO_LARGE, answer, needs_scope, problem, responses
from kurz.webhooks.models import (
    DeliveryDetail,
    DeliveryPagination,
    DeliveryRead,
    DeliveryStatus,
    SecretRotation,
    WebhookCreate,
    WebhookCreated,
    WebhookPagination,
    WebhookRead,
    WebhookUpdate,
)
from kurz.webhooks.service import Webhooks

PREFIX = "/api/v1/webhooks"
router = APIRouter(prefix=PREFIX, tags=["webhooks"])

WebhooksDep = Annotated[Webhooks, part("webhooks")]
WebhookId = Annotated[str, Path(description="The webhook's id.", examples=["3"])]
DeliveryId = Annotated[str, Path(description="The delivery's id.", examples=["41"])]
Limit = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[
    str | None, Query(max_length=200, description="A previous page's `next_cursor`.")
]

_SCOPE = needs_scope("webhooks")
_NOT_FOUND = {404: problem("No such webhook, or not the caller's")}
_CREATED = (
    "The webhook, with its signing secret (`whsec_...`): shown in this answer only",
    "Location",
)
_INVALID = {
    422: problem(
        "A field failed validation: a URL that is not http(s), carries credentials, or "
        "names an address webhooks may not be sent to; an unknown event"
    )
}
_UNCONFIGURED = {
    503: problem(
        "The database does not answer (nothing was changed), or, with PostgreSQL, "
        "KURZ_WEBHOOK_KEY is not set (`webhooks-not-configured`)",
        "Retry-After",
    )
}
_AUTHENTICATED = {status: entry for status, entry in AUTHENTICATED.items() if status != 503}


def _with_secret(created: WebhookCreated, status: int, *, location: bool) -> Response:
    headers = {}
    if location:
        headers["Location"] = f"{PREFIX}/{created.id}"
    return Response(
        created.model_dump_json().encode(), status, headers, media_type="application/json"
    )


@router.post(
    "",
    status_code=201,
    operation_id="createWebhook",
    summary="Register a webhook endpoint; its signing secret is in this answer only",
    response_model=WebhookCreated,
    responses=responses(
        {
            201: answer(*_CREATED),
            400: problem("Malformed JSON or Content-Length"),
            409: problem("The caller has as many webhooks as a user may (`too-many-webhooks`)"),
        },
        _INVALID,
        _SCOPE,
        TOO_LARGE,
        _UNCONFIGURED,
        _AUTHENTICATED,
        limited=True,
    ),
)
async def create_webhook(
    webhook_in: WebhookCreate, principal: WebhooksScope, webhooks: WebhooksDep
) -> Response:
    # No Idempotency-Key: a replay would have to keep the secret to send it again.
    created = await webhooks.create(principal=principal, webhook_in=webhook_in)
    return _with_secret(created, 201, location=True)


@router.get(
    "",
    operation_id="listWebhooks",
    summary="List the caller's webhook endpoints, newest first",
    responses=responses(
        {200: answer("A page of webhooks"), 422: problem("A malformed limit or cursor")},
        _SCOPE,
        AUTHENTICATED,
        limited=True,
    ),
)
async def list_webhooks(
    principal: WebhooksScope, webhooks: WebhooksDep, limit: Limit = 20, cursor: Cursor = None
) -> WebhookPagination:
    return await webhooks.list_(principal=principal, limit=limit, cursor=cursor)


@router.get(
    "/{webhook_id}",
    operation_id="getWebhook",
    summary="Get a webhook endpoint (never its secret)",
    responses=responses(
        {200: answer("The webhook")}, _NOT_FOUND, _SCOPE, AUTHENTICATED, limited=True
    ),
)
async def get_webhook(
    webhook_id: WebhookId, principal: WebhooksScope, webhooks: WebhooksDep
) -> WebhookRead:
    return await webhooks.get(principal=principal, webhook_id=webhook_id)


@router.patch(
    "/{webhook_id}",
    operation_id="updateWebhook",
    summary="Change a webhook's URL, events, description, or turn it off and on",
    responses=responses(
        {200: answer("The webhook as changed"), 400: problem("Malformed JSON")},
        _INVALID,
        _NOT_FOUND,
        _SCOPE,
        TOO_LARGE,
        AUTHENTICATED,
        limited=True,
    ),
)
async def update_webhook(
    webhook_id: WebhookId,
    webhook_in: WebhookUpdate,
    principal: WebhooksScope,
    webhooks: WebhooksDep,
) -> WebhookRead:
    return await webhooks.update(principal=principal, webhook_id=webhook_id, webhook_in=webhook_in)


@router.delete(
    "/{webhook_id}",
    status_code=204,
    operation_id="deleteWebhook",
    summary="Delete a webhook, with its deliveries; nothing more is sent to it",
    responses=responses({204: answer("Deleted")}, _NOT_FOUND, _SCOPE, AUTHENTICATED, limited=True),
)
async def delete_webhook(
    webhook_id: WebhookId, principal: WebhooksScope, webhooks: WebhooksDep
) -> Response:
    await webhooks.delete(principal=principal, webhook_id=webhook_id)
    return Response(status_code=204)


@router.post(
    "/{webhook_id}/rotate-secret",
    operation_id="rotateWebhookSecret",
    summary="Give a webhook a new signing secret (in this answer only)",
    response_model=WebhookCreated,
    responses=responses(
        {200: answer("The webhook, with its new secret"), 400: problem("Malformed JSON")},
        {422: problem("`expire_previous_in` is not 0 to 86400 seconds")},
        _NOT_FOUND,
        _SCOPE,
        TOO_LARGE,
        _UNCONFIGURED,
        _AUTHENTICATED,
        limited=True,
    ),
)
async def rotate_secret(
    webhook_id: WebhookId,
    principal: WebhooksScope,
    webhooks: WebhooksDep,
    rotation: SecretRotation | None = None,
) -> Response:
    rotated = await webhooks.rotate_secret(
        principal=principal, webhook_id=webhook_id, rotation=rotation or SecretRotation()
    )
    return _with_secret(rotated, 200, location=False)


@router.get(
    "/{webhook_id}/deliveries",
    operation_id="listWebhookDeliveries",
    summary="List a webhook's deliveries, newest first, with their last attempt",
    responses=responses(
        {200: answer("A page of deliveries"), 422: problem("A malformed limit, cursor or status")},
        _NOT_FOUND,
        _SCOPE,
        AUTHENTICATED,
        limited=True,
    ),
)
async def list_deliveries(
    webhook_id: WebhookId,
    principal: WebhooksScope,
    webhooks: WebhooksDep,
    limit: Limit = 20,
    cursor: Cursor = None,
    status: Annotated[
        DeliveryStatus | None, Query(description="Only deliveries in this state.")
    ] = None,
) -> DeliveryPagination:
    return await webhooks.deliveries(
        principal=principal, webhook_id=webhook_id, limit=limit, cursor=cursor, status=status
    )


_NO_DELIVERY = {404: problem("No such webhook or delivery, or not the caller's")}


@router.get(
    "/{webhook_id}/deliveries/{delivery_id}",
    operation_id="getWebhookDelivery",
    summary="Get a delivery, with the body it sends",
    responses=responses(
        {200: answer("The delivery")}, _NO_DELIVERY, _SCOPE, AUTHENTICATED, limited=True
    ),
)
async def get_delivery(
    webhook_id: WebhookId,
    delivery_id: DeliveryId,
    principal: WebhooksScope,
    webhooks: WebhooksDep,
) -> DeliveryDetail:
    return await webhooks.delivery(
        principal=principal, webhook_id=webhook_id, delivery_id=delivery_id
    )


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    operation_id="redeliverWebhookDelivery",
    summary="Send a dead (or delivered) delivery again, with fresh attempts",
    responses=responses(
        {
            202: answer("Queued: the delivery, pending"),
            409: problem("The delivery is pending already (`delivery-pending`)"),
        },
        _NO_DELIVERY,
        _SCOPE,
        AUTHENTICATED,
        limited=True,
    ),
)
async def redeliver(
    webhook_id: WebhookId,
    delivery_id: DeliveryId,
    principal: WebhooksScope,
    webhooks: WebhooksDep,
) -> DeliveryRead:
    return await webhooks.redeliver(
        principal=principal, webhook_id=webhook_id, delivery_id=delivery_id
    )
