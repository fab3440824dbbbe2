"""``/v1/webhooks``: where the node POSTs your transfers' status changes, in which format, and
sending again what was sent (or given up)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from node.api.deps import CurrentBank, IdempotencyKey, RawBody, ReadSession, ServicesDep
from node.api.guard import JsonRoute
from node.api.openapi import responses
from node.api.routes._idempotent import run_post
from node.auth import Principal
from node.errors import Refusal, Refused
from node.notify import destinations
from node.notify.webhooks import TOLERANCE_S, new_secret
from node.ops import audit_log
from node.store.models import Webhook, WebhookDelivery

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], route_class=JsonRoute)

REDELIVER_MAX = 1000
"""Deliveries sent again by one request for a time range."""
Format = Literal["json", "iso20022"]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"url": "https://bank.example/corridor"}]}
    )
    url: AnyHttpUrl = Field(
        description="http(s) URL that takes a POST; not one that reaches a loopback, link-local or private address"
    )
    format: Format = Field(
        "json",
        description=(
            "`json`: the `transfer.status_changed` body; `iso20022`: your transfers' status changes as pacs.002 "
            "XML (the same report as GET /v1/iso20022/pacs.002/{uetr}); other events stay JSON"
        ),
    )


class WebhookPublic(BaseModel):
    url: str
    format: Format
    created_at: dt.datetime
    deliveries: dict[str, int] = Field(description="deliveries by status: pending, delivered, failed")


class WebhookCreated(BaseModel):
    url: str
    format: Format
    secret: str = Field(
        description="shown once: a Standard Webhooks secret (`whsec_` and base64) that verifies each delivery's "
        "webhook-signature"
    )
    created_at: dt.datetime


class DeliveryPublic(BaseModel):
    id: uuid.UUID = Field(description="the delivery's webhook-id")
    transfer_id: str | None
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    last_error: str
    created_at: dt.datetime
    delivered_at: dt.datetime | None

    @classmethod
    def of(cls, d: WebhookDelivery) -> DeliveryPublic:
        return cls(
            id=uuid.UUID(d.id),
            transfer_id=d.transfer_id,
            status=d.status,
            attempts=d.attempts,
            last_error=d.last_error,
            created_at=d.created_at,
            delivered_at=d.delivered_at,
        )


class Redelivery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    since: dt.datetime = Field(description="deliveries created at or after this time (RFC 3339)")
    until: dt.datetime = Field(description="and before this time; at most one day after `since`")
    status: Literal["failed", "delivered", "any"] = Field("failed", description="which of them to send again")


class Redelivered(BaseModel):
    deliveries: list[uuid.UUID] = Field(description=f"the deliveries queued to send again (at most {REDELIVER_MAX})")


@router.post(
    "",
    status_code=201,
    response_model=WebhookCreated,
    responses=responses(Refusal.CALLBACK_URL_FORBIDDEN),
    summary="Register (or replace) your callback URL",
    description=(
        "Every status change of your transfers is POSTed to the URL (`type` `transfer.status_changed`, or its "
        "pacs.002 with `format: iso20022`), and FINAL payments to you as creditor too. Deliveries are signed as "
        "Standard Webhooks (standardwebhooks.com): `webhook-id` (a UUID, the same on retries: drop one you "
        "already had), `webhook-timestamp` (unix seconds of the attempt) and `webhook-signature: v1,<base64 "
        "HMAC-SHA256 of `id.timestamp.body` under the base64 key after `whsec_`>`; refuse a timestamp more than "
        f"{TOLERANCE_S} s from your clock. A delivery without a 2xx answer is retried after 1, 2, 4 ... s up to the "
        "node's bound. The URL must not reach a loopback, link-local or private address (unless the node's "
        "operator allows it, as the devnet does). Registering again replaces the URL, format and secret."
    ),
)
def register(
    body: WebhookCreate, svc: ServicesDep, who: CurrentBank, request: Request, raw: RawBody, key: IdempotencyKey = None
) -> JSONResponse:
    url = str(body.url)
    if (why := destinations.problem(url, svc.settings.private_webhooks_allowed)) is not None:
        raise Refused(Refusal.CALLBACK_URL_FORBIDDEN, f"the node will not POST to {url}: {why}", {"field": "url"})

    def work(session: Session) -> dict[str, Any]:
        assert who.bank_id is not None
        hook = session.scalar(select(Webhook).where(Webhook.bank_id == who.bank_id))
        now = dt.datetime.now(dt.UTC)
        if hook is None:
            hook = Webhook(bank_id=who.bank_id, url=url, format=body.format, secret=new_secret(), created_at=now)
            session.add(hook)
        else:
            hook.url, hook.format, hook.secret, hook.created_at = url, body.format, new_secret(), now
        created = WebhookCreated(url=hook.url, format=body.format, secret=hook.secret, created_at=now)
        return created.model_dump(mode="json")

    return run_post(svc, who, request, raw, key, 201, work)


@router.get(
    "",
    response_model=WebhookPublic,
    summary="Your callback URL and how its deliveries went",
    responses=responses(Refusal.NOT_FOUND),
)
def show(session: ReadSession, who: CurrentBank) -> WebhookPublic:
    hook = _registered(session, who)
    counts = session.execute(
        select(WebhookDelivery.status, func.count())
        .where(WebhookDelivery.bank_id == who.bank_id)
        .group_by(WebhookDelivery.status)
    )
    return WebhookPublic(
        url=hook.url, format=hook.format, created_at=hook.created_at, deliveries={s: int(n) for s, n in counts}
    )


@router.get(
    "/deliveries",
    response_model=list[DeliveryPublic],
    summary="Your latest deliveries, newest first",
    responses=responses(Refusal.NOT_FOUND),
)
def deliveries(
    session: ReadSession,
    who: CurrentBank,
    status: Annotated[Literal["pending", "delivered", "failed"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[DeliveryPublic]:
    query = select(WebhookDelivery).where(WebhookDelivery.bank_id == who.bank_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    rows = session.scalars(query.order_by(WebhookDelivery.created_at.desc()).limit(limit))
    return [DeliveryPublic.of(d) for d in rows]


@router.post(
    "/deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=DeliveryPublic,
    summary="Send one delivery again",
    description=(
        "Queues the delivery to be sent again at once, with a fresh count of attempts: the same webhook-id and "
        "body, a new timestamp and signature. For one your receiver missed, failed or wants again."
    ),
    responses=responses(Refusal.NOT_FOUND),
)
def redeliver(delivery_id: str, svc: ServicesDep, who: CurrentBank) -> DeliveryPublic:
    with svc.store.transaction() as session:
        _registered(session, who)
        delivery = session.get(WebhookDelivery, delivery_id)
        if delivery is None or delivery.bank_id != who.bank_id:
            raise Refused(Refusal.NOT_FOUND, f"no delivery {delivery_id} to your bank")
        _requeue(delivery)
        audit_log.append(session, f"bank:{who.bic}", "webhook.redeliver", f"delivery:{delivery_id}", {})
        return DeliveryPublic.of(delivery)


@router.post(
    "/redeliver",
    status_code=202,
    response_model=Redelivered,
    summary="Send again the deliveries of a time range",
    description=(
        f"Queues up to {REDELIVER_MAX} deliveries created in [since, until), oldest first (by default those that "
        "failed), to be sent again with a fresh count of attempts. For a receiver that was down."
    ),
    responses=responses(Refusal.NOT_FOUND, Refusal.REDELIVERY_RANGE),
)
def redeliver_range(body: Redelivery, svc: ServicesDep, who: CurrentBank) -> Redelivered:
    since, until = body.since, body.until
    if since.tzinfo is None or until.tzinfo is None or not since < until <= since + dt.timedelta(days=1):
        raise Refused(
            Refusal.REDELIVERY_RANGE,
            "since and until must be RFC 3339 times with an offset, since before until, at most a day apart",
            {"field": "until"},
        )
    with svc.store.transaction() as session:
        _registered(session, who)
        query = select(WebhookDelivery).where(
            WebhookDelivery.bank_id == who.bank_id,
            WebhookDelivery.created_at >= since,
            WebhookDelivery.created_at < until,
        )
        if body.status != "any":
            query = query.where(WebhookDelivery.status == body.status)
        found = list(session.scalars(query.order_by(WebhookDelivery.created_at).limit(REDELIVER_MAX)))
        for delivery in found:
            _requeue(delivery)
        audit_log.append(
            session,
            f"bank:{who.bic}",
            "webhook.redeliver",
            f"bank:{who.bic}",
            {"since": since.isoformat(), "until": until.isoformat(), "count": len(found)},
        )
        return Redelivered(deliveries=[uuid.UUID(d.id) for d in found])


def _requeue(delivery: WebhookDelivery) -> None:
    delivery.status, delivery.attempts, delivery.last_error = "pending", 0, ""
    delivery.next_attempt_at = dt.datetime.now(dt.UTC)


@router.delete(
    "",
    status_code=204,
    summary="Stop callbacks: remove your URL and secret",
    description=(
        "Nothing more is sent; deliveries still pending are dropped (marked failed, `last_error` says why). "
        "Register again (POST) to start anew, with a new secret."
    ),
    responses=responses(Refusal.NOT_FOUND),
)
def remove(svc: ServicesDep, who: CurrentBank) -> Response:
    with svc.store.transaction() as session:
        hook = _registered(session, who)
        session.delete(hook)
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.bank_id == who.bank_id, WebhookDelivery.status == "pending")
            .values(status="failed", last_error="the bank removed its webhook")
        )
        audit_log.append(session, f"bank:{who.bic}", "webhook.removed", f"bank:{who.bic}", {"url": hook.url})
    return Response(status_code=204)


def _registered(session: Session, who: Principal) -> Webhook:
    hook = session.scalar(select(Webhook).where(Webhook.bank_id == who.bank_id))
    if hook is None:
        raise Refused(Refusal.NOT_FOUND, "no webhook registered: POST /v1/webhooks")
    return hook
