"""``/v1/audit``: every transfer with its on-chain references, and the audit log, as JSON lines."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from node.api.deps import Auditor, AuditorOrOperator, ServicesDep
from node.api.guard import JsonRoute
from node.ops import audit_log
from node.store.models import ChainEvent, Transfer
from settlement.audit_log import as_dict

router = APIRouter(prefix="/v1/audit", tags=["audit"], route_class=JsonRoute)
JSON_LINES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "JSON lines: one object per line, as the operation describes",
        "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
    }
}

EXPORT_CHUNK = 500
_EVENT_KEYS = {
    "InstructionEscrowed": "escrow",
    "InstructionSettled": "settlement",
    "InstructionNetted": "settlement",
    "InstructionRefunded": "refund",
}


def export_rows(svc: ServicesDep) -> Iterator[dict[str, Any]]:
    """Every transfer, oldest first, read in chunks (one short read transaction each)."""
    last = ""
    while True:
        with svc.store.transaction(write=False) as session:
            rows = list(
                session.scalars(select(Transfer).where(Transfer.id > last).order_by(Transfer.id).limit(EXPORT_CHUNK))
            )
            if not rows:
                return
            events: dict[str, dict[str, Any]] = {}
            for e in session.scalars(select(ChainEvent).where(ChainEvent.transfer_id.in_([t.id for t in rows]))):
                assert e.transfer_id is not None
                events.setdefault(e.transfer_id, {})[_EVENT_KEYS[e.name]] = {
                    "tx_hash": e.tx_hash,
                    "block_number": e.block_number,
                    "log_index": e.log_index,
                    **e.data,
                }
        for t in rows:
            yield {
                "id": t.id,
                "status": t.status,
                "status_code": t.status_code,
                "nonce": str(t.nonce),
                "debtor": t.debtor,
                "creditor": t.creditor,
                "sell_currency": t.sell_currency,
                "sell_amount": str(t.sell_amount),
                "buy_currency": t.buy_currency,
                "min_buy_amount": str(t.min_buy_amount),
                "buy_amount": None if t.buy_amount is None else str(t.buy_amount),
                "fee": None if t.fee is None else str(t.fee),
                "rate": None if t.rate is None else str(t.rate),
                "deadline": t.deadline,
                "details_hash": t.details_hash,
                "quote_id": t.quote_id,
                "created_at": t.created_at.isoformat(),
                "updated_at": t.updated_at.isoformat(),
                **{key: events.get(t.id, {}).get(key) for key in ("escrow", "settlement", "refund")},
            }
        last = rows[-1].id


@router.get(
    "/transfers/export",
    summary="Export every transfer (JSON lines)",
    description=(
        "One JSON object per line and per transfer, ordered by id: the instruction's terms, status, the figures "
        "the node recorded, and the escrow, settlement and refund events it applied (transaction hash, block, "
        "log index, the event's fields). Amounts and nonces are decimal strings. For `corridor audit --against`."
    ),
    response_class=StreamingResponse,
    responses=JSON_LINES,
)
def export(svc: ServicesDep, _: Auditor) -> StreamingResponse:
    lines = (json.dumps(row, separators=(",", ":")) + "\n" for row in export_rows(svc))
    return StreamingResponse(lines, media_type="application/x-ndjson")


@router.get(
    "/log",
    summary="Export the hash-chained audit log (JSON lines)",
    description=(
        "Every operator action and transfer state change, oldest first: `seq`, `at`, `actor`, `action`, `subject`, "
        "`data`, `prev_hash`, `hash`. Each hash is SHA-256 over the canonical JSON of the entry and the previous "
        "hash; `corridor audit-log verify --file` checks an export without the node. For the auditor's or the "
        "operator's key."
    ),
    response_class=StreamingResponse,
    responses=JSON_LINES,
)
def export_log(svc: ServicesDep, _: AuditorOrOperator) -> StreamingResponse:
    lines = (json.dumps(as_dict(e), separators=(",", ":"), sort_keys=True) + "\n" for e in audit_log.entries(svc.store))
    return StreamingResponse(lines, media_type="application/x-ndjson")
