"""``/v1/transfers``: submit a signed instruction, follow it, list, cancel."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from node import transfers
from node.api.deps import CurrentBank, IdempotencyKey, RawBody, Reader, ReadSession, ServicesDep
from node.api.routes._idempotent import run_post
from node.api.schemas import TransferCreate, TransferPage, TransferPublic
from node.faults import failpoint
from settlement.lifecycle import TransferStatus

router = APIRouter(prefix="/v1/transfers", tags=["transfers"])


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
)
def submit(
    body: TransferCreate, svc: ServicesDep, who: CurrentBank, request: Request, raw: RawBody, key: IdempotencyKey = None
) -> JSONResponse:
    ctx = transfers.AcceptContext(
        domain=svc.domain,
        currencies=frozenset(svc.manifest.assets),
        now_s=int(dt.datetime.now(dt.UTC).timestamp()),
        deadline_min_s=svc.settings.deadline_min_s,
        deadline_max_s=svc.settings.deadline_max_s,
    )
    response = run_post(
        svc, who, request, raw, key, 202,
        lambda session: transfers.public(transfers.accept(session, who, body, ctx)).model_dump(mode="json"),
    )  # fmt: skip
    failpoint("after_accept")  # committed, the 202 not yet sent
    return response


@router.get("/{transfer_id}", response_model=TransferPublic, summary="A transfer, its history and chain references")
def get_transfer(transfer_id: str, session: ReadSession, who: Reader) -> TransferPublic:
    return transfers.public(transfers.get_visible(session, who, transfer_id), transfers.chain_head(session))


@router.get("", response_model=TransferPage, summary="Your transfers, newest first, by cursor")
def list_transfers(
    session: ReadSession,
    who: Reader,
    svc: ServicesDep,
    status: TransferStatus | None = None,
    created_from: Annotated[dt.datetime | None, Query(description="ISO 8601, inclusive")] = None,
    created_to: Annotated[dt.datetime | None, Query(description="ISO 8601, exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: str | None = None,
) -> TransferPage:
    rows, next_cursor = transfers.page(
        session, who, min(limit, svc.settings.page_size_max), cursor, status, created_from, created_to
    )
    head = transfers.chain_head(session)
    return TransferPage(data=[transfers.public(t, head) for t in rows], next_cursor=next_cursor)


@router.post("/{transfer_id}/cancel", response_model=TransferPublic, summary="Cancel a transfer not yet escrowed")
def cancel(
    transfer_id: str, svc: ServicesDep, who: CurrentBank, request: Request, raw: RawBody, key: IdempotencyKey = None
) -> JSONResponse:
    return run_post(
        svc, who, request, raw, key, 200,
        lambda session: transfers.public(transfers.cancel(session, who, transfer_id)).model_dump(mode="json"),
    )  # fmt: skip
