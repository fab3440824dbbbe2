"""``/v1/admin/reviews``: transfers the risk rules held for the operator, approved or rejected."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from node.api import views
from node.api.deps import IdempotencyKey, Operator, RawBody, ReadSession, ServicesDep
from node.api.guard import JsonRoute
from node.api.openapi import responses
from node.api.routes._idempotent import run_post
from node.api.schemas import TransferPublic
from node.errors import Refusal
from node.ops.actions import decide_review
from node.store.models import Transfer
from settlement.lifecycle import ReviewState

router = APIRouter(prefix="/v1/admin", tags=["admin"], route_class=JsonRoute)


class ReviewDecision(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"note": "beneficiary verified"}]})
    note: str = Field("", max_length=1000, description="why; kept in the transfer's history and the audit log")


class ReviewPage(BaseModel):
    data: list[TransferPublic]


@router.get("/reviews", response_model=ReviewPage, summary="Transfers held for review (escrowed, not settled)")
def reviews(session: ReadSession, _: Operator) -> ReviewPage:
    rows = session.scalars(select(Transfer).where(Transfer.review == ReviewState.PENDING).order_by(Transfer.created_at))
    return ReviewPage(data=[views.transfer_public(t) for t in rows])


@router.post(
    "/reviews/{transfer_id}/approve",
    response_model=TransferPublic,
    summary="Approve a held transfer: it settles",
    responses=responses(Refusal.NOT_FOUND, Refusal.NOT_IN_REVIEW),
)
def approve(
    transfer_id: str,
    body: ReviewDecision,
    svc: ServicesDep,
    who: Operator,
    request: Request,
    raw: RawBody,
    key: IdempotencyKey = None,
) -> JSONResponse:
    return run_post(
        svc, who, request, raw, key, 200, lambda session: _decide(session, transfer_id, ReviewState.APPROVED, body.note)
    )


@router.post(
    "/reviews/{transfer_id}/reject",
    response_model=TransferPublic,
    summary="Reject a held transfer: refunded if it escrowed, else REJECTED",
    description=(
        "An escrowed transfer is refunded to the debtor at once (the operator's key may refund before the deadline) "
        "and ends REFUNDED with code review_rejected; one not yet escrowed ends REJECTED with that code."
    ),
    responses=responses(Refusal.NOT_FOUND, Refusal.NOT_IN_REVIEW),
)
def reject(
    transfer_id: str,
    body: ReviewDecision,
    svc: ServicesDep,
    who: Operator,
    request: Request,
    raw: RawBody,
    key: IdempotencyKey = None,
) -> JSONResponse:
    return run_post(
        svc, who, request, raw, key, 200, lambda session: _decide(session, transfer_id, ReviewState.REJECTED, body.note)
    )


def _decide(session: Session, transfer_id: str, decision: ReviewState, note: str) -> dict[str, Any]:
    return views.transfer_public(decide_review(session, transfer_id, decision, note)).model_dump(mode="json")
