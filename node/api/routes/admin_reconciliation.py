"""``/v1/admin/reconciliation``: the last reconciliation of the store against the chain, and a new one."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from node.api.deps import Operator, ReadSession, ServicesDep
from node.api.guard import JsonRoute
from node.api.openapi import responses
from node.errors import Refusal, Refused
from node.ops.reconcile import last_run, open_mismatches, reconcile
from settlement.errors import ChainError

router = APIRouter(prefix="/v1/admin", tags=["admin"], route_class=JsonRoute)


class MismatchPublic(BaseModel):
    kind: str = Field(description="chain_balance, escrowed or transfer")
    subject: str
    expected: str
    found: str
    detail: str
    first_seen_at: dt.datetime
    last_seen_at: dt.datetime
    first_run_id: int
    last_run_id: int


class ReconciliationPublic(BaseModel):
    last_run: dict[str, Any] | None
    open_mismatches: list[MismatchPublic]


@router.get("/reconciliation", response_model=ReconciliationPublic, summary="The last reconciliation and what it found")
def reconciliation(session: ReadSession, _: Operator) -> ReconciliationPublic:
    return _reconciliation(session)


@router.post(
    "/reconciliation",
    response_model=ReconciliationPublic,
    summary="Reconcile the store with the chain now",
    description="Runs at once (as `corridor reconcile` does) and answers with what it found. Nothing is corrected.",
    responses=responses(Refusal.CHAIN_UNREACHABLE),
)
def reconcile_now(svc: ServicesDep, _: Operator) -> ReconciliationPublic:
    try:
        reconcile(svc.store, svc.settings.rpc_url, svc.manifest, svc.settings.final, "operator")
    except (ChainError, OSError, httpx.HTTPError) as exc:
        raise Refused(Refusal.CHAIN_UNREACHABLE, f"the chain could not be read: {exc}") from None
    with svc.store.transaction(write=False) as session:
        return _reconciliation(session)


def _reconciliation(session: Session) -> ReconciliationPublic:
    run = last_run(session)
    summary = None
    if run is not None:
        summary = {
            "id": run.id,
            "trigger": run.trigger,
            "started_at": run.started_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "block": run.block,
            "checked": run.checked,
            "mismatches": run.mismatches,
            "error": run.error,
        }
    return ReconciliationPublic(
        last_run=summary,
        open_mismatches=[
            MismatchPublic(
                kind=m.kind,
                subject=m.subject,
                expected=m.expected,
                found=m.found,
                detail=m.detail,
                first_seen_at=m.first_seen_at,
                last_seen_at=m.last_seen_at,
                first_run_id=m.first_run_id,
                last_run_id=m.last_run_id,
            )
            for m in open_mismatches(session)
        ],
    )
