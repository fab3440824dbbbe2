"""``/v1/webhooks``: where the node POSTs your transfers' status changes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request, Response
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
from node.notify.webhooks import new_secret
from node.ops import audit_log
from node.store.models import Webhook, WebhookDelivery

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], route_class=JsonRoute)


class WebhookCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"url": "https://bank.example/corridor"}]}
    )
    url: AnyHttpUrl = Field(description="http(s) URL that takes a POST of JSON")


class WebhookPublic(BaseModel):
    url: str
    created_at: dt.datetime
    deliveries: dict[str, int] = Field(description="deliveries by status: pending, delivered, failed")


class WebhookCreated(BaseModel):
    url: str
    secret: str = Field(description="shown once: verify each delivery's Corridor-Signature with it")
    created_at: dt.datetime


@router.post(
    "",
    status_code=201,
    response_model=WebhookCreated,
    summary="Register (or replace) your callback URL",
    description=(
        "Every status change of your transfers is POSTed to the URL as JSON (`type` "
        "`transfer.status_changed`), and FINAL payments to you as creditor too. Each delivery carries "
        "`Corridor-Delivery` (a UUID, the same on retries: drop one you already had) and `Corridor-Signature: "
        "sha256=<hex HMAC-SHA256 of the raw body under the secret>`. A delivery without a 2xx answer is retried "
        "after 1, 2, 4 ... s up to the node's bound. Registering again replaces the URL and the secret."
    ),
)
def register(
    body: WebhookCreate, svc: ServicesDep, who: CurrentBank, request: Request, raw: RawBody, key: IdempotencyKey = None
) -> JSONResponse:
    def work(session: Session) -> dict[str, Any]:
        assert who.bank_id is not None
        hook = session.scalar(select(Webhook).where(Webhook.bank_id == who.bank_id))
        now = dt.datetime.now(dt.UTC)
        if hook is None:
            hook = Webhook(bank_id=who.bank_id, url=str(body.url), secret=new_secret(), created_at=now)
            session.add(hook)
        else:
            hook.url, hook.secret, hook.created_at = str(body.url), new_secret(), now
        return WebhookCreated(url=hook.url, secret=hook.secret, created_at=now).model_dump(mode="json")

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
    return WebhookPublic(url=hook.url, created_at=hook.created_at, deliveries={s: int(n) for s, n in counts})


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
