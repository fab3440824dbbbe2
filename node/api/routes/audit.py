"""``/v1/audit``: every transfer with its on-chain references, and the audit log, as JSON lines."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from node.api.deps import Auditor, AuditorOrOperator, ServicesDep
from node.api.guard import JsonRoute
from node.ops import audit_log
from node.ops.export import transfer_rows
from settlement.audit_log import as_dict

router = APIRouter(prefix="/v1/audit", tags=["audit"], route_class=JsonRoute)
JSON_LINES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "JSON lines: one object per line, as the operation describes",
        "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
    }
}


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
    lines = (json.dumps(row, separators=(",", ":")) + "\n" for row in transfer_rows(svc.store))
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
