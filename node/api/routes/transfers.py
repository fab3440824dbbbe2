"""``/v1/transfers``: submit a signed instruction, follow it, list, cancel."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from node import intake, submission, transfers
from node.api import views
from node.api.deps import CurrentBank, IdempotencyKey, RawBody, Reader, ReadSession, ServicesDep
from node.api.errors import INTAKE_CODES, status_of
from node.api.guard import JsonRoute
from node.api.openapi import responses
from node.api.routes._idempotent import run_post
from node.api.schemas import (
    TRANSFER_BATCH_MAX,
    Rfc3339,
    TransferBatchCreate,
    TransferBatchItem,
    TransferBatchResult,
    TransferCreate,
    TransferPage,
    TransferPublic,
)
from node.errors import Refusal, Refused
from node.faults import failpoint
from node.services import Services
from settlement.lifecycle import TransferStatus

router = APIRouter(prefix="/v1/transfers", tags=["transfers"], route_class=JsonRoute)


def accept_context(svc: Services, items: Sequence[submission.TransferCreate]) -> intake.AcceptContext:
    """What intake checks ``items`` against: the network's currencies, the clock, the deadline window,
    the vault's band for their pairs and the queue's bound."""
    pairs = [(t.instruction.sell_currency, t.instruction.buy_currency) for t in items]
    return intake.AcceptContext(
        domain=svc.domain,
        currencies=frozenset(svc.manifest.assets),
        now_s=int(dt.datetime.now(dt.UTC).timestamp()),
        deadline_min_s=svc.settings.deadline_min_s,
        deadline_max_s=svc.settings.deadline_max_s,
        ceilings=svc.rate_band.ceilings(pairs),
        queue_max=svc.settings.queue_per_bank_max,
    )


@router.post(
    "",
    status_code=202,
    response_model=TransferPublic,
    summary="Submit a signed payment instruction",
    description=(
        "The body is the EIP-712 `Instruction` your bank signed (its `id` is the UETR, which becomes the "
        "transfer's id) and the EIP-2098 signature. The signature is verified against your registered address "
        "before anything is stored; the transfer is committed before the 202 is sent, in status RECEIVED."
    ),
    responses=responses(*INTAKE_CODES),
)
def submit(
    body: TransferCreate, svc: ServicesDep, who: CurrentBank, request: Request, raw: RawBody, key: IdempotencyKey = None
) -> JSONResponse:
    ctx = accept_context(svc, [body])
    verified = [intake.verify(body, svc.domain)]

    def work(session: Session) -> dict[str, Any]:
        [result] = intake.accept(session, who, verified, ctx)
        if isinstance(result, Refused):
            raise result
        return views.transfer_public(transfers.get_visible(session, who, result)).model_dump(mode="json")

    response = run_post(svc, who, request, raw, key, 202, work)
    failpoint("after_accept")  # committed, the 202 not yet sent
    return response


@router.post(
    "/batch",
    status_code=202,
    response_model=TransferBatchResult,
    summary="Submit several signed instructions at once",
    description=(
        f"Up to {TRANSFER_BATCH_MAX} items, each as the body of `POST /v1/transfers`. Each is checked on its own: "
        "the valid ones are committed as RECEIVED (all before the answer), each refused one gets the 4xx status and "
        "error it would have had alone and stores nothing. The `Idempotency-Key` covers the whole batch; each "
        "transfer's UETR stays unique across batches. An item's error has one of the codes of `POST /v1/transfers`, "
        "or `invalid_request`."
    ),
)
def submit_batch(
    body: TransferBatchCreate,
    svc: ServicesDep,
    who: CurrentBank,
    request: Request,
    raw: RawBody,
    key: IdempotencyKey = None,
) -> JSONResponse:
    ctx = accept_context(svc, body.transfers)
    verified = [intake.verify(item, svc.domain) for item in body.transfers]

    def work(session: Session) -> dict[str, Any]:
        results = []
        for item, outcome in zip(body.transfers, intake.accept(session, who, verified, ctx), strict=True):
            if isinstance(outcome, Refused):
                results.append(
                    TransferBatchItem(
                        id=str(item.instruction.id),
                        status_code=status_of(outcome),
                        error={"code": outcome.code, "message": str(outcome), "details": outcome.details},
                    )
                )
            else:
                results.append(TransferBatchItem(id=outcome, status_code=202, status=TransferStatus.RECEIVED))
        accepted = sum(1 for r in results if r.status_code == 202)
        return TransferBatchResult(accepted=accepted, refused=len(results) - accepted, results=results).model_dump(
            mode="json"
        )

    response = run_post(svc, who, request, raw, key, 202, work)
    failpoint("after_accept")
    return response


@router.get(
    "/{transfer_id}",
    response_model=TransferPublic,
    summary="A transfer, its history and chain references",
    responses=responses(Refusal.NOT_FOUND),
)
def get_transfer(transfer_id: str, session: ReadSession, who: Reader) -> TransferPublic:
    return views.transfer_public(transfers.get_visible(session, who, transfer_id), transfers.chain_head(session))


@router.get(
    "",
    response_model=TransferPage,
    summary="Your transfers, newest first, by cursor",
    responses=responses(Refusal.BAD_CURSOR),
)
def list_transfers(
    session: ReadSession,
    who: Reader,
    svc: ServicesDep,
    status: TransferStatus | None = None,
    created_from: Annotated[Rfc3339 | None, Query(description="RFC 3339, inclusive")] = None,
    created_to: Annotated[Rfc3339 | None, Query(description="RFC 3339, exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: str | None = None,
) -> TransferPage:
    rows, next_cursor = transfers.page(
        session, who, min(limit, svc.settings.page_size_max), cursor, status, created_from, created_to
    )
    head = transfers.chain_head(session)
    return TransferPage(data=[views.transfer_public(t, head) for t in rows], next_cursor=next_cursor)


@router.post(
    "/{transfer_id}/cancel",
    response_model=TransferPublic,
    summary="Cancel a transfer not yet escrowed",
    responses=responses(Refusal.NOT_FOUND, Refusal.NOT_CANCELLABLE),
)
def cancel(
    transfer_id: str, svc: ServicesDep, who: CurrentBank, request: Request, raw: RawBody, key: IdempotencyKey = None
) -> JSONResponse:
    return run_post(
        svc,
        who,
        request,
        raw,
        key,
        200,
        lambda session: views.transfer_public(transfers.cancel(session, who, transfer_id)).model_dump(mode="json"),
    )
