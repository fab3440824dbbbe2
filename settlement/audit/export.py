"""Comparing the node's transfer export (``GET /v1/audit/transfers/export``, JSON lines) with the chain.

Every FINAL (REFUNDED) transfer in the export must have its settlement (refund) on chain with
the same figures, and every settlement and refund on chain must appear in the export.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx

from settlement.audit.report import Check
from settlement.audit.state import Ledger
from settlement.eip712 import id_to_uuid, uuid_to_id
from settlement.errors import ConfigurationError

EXPORT_PATH = "/v1/audit/transfers/export"
TIMEOUT_S = 120.0


def load_export(source: str, api_key: str | None) -> list[dict[str, Any]]:
    """The export's rows, from a file or from a node (its base URL or the export's URL)."""
    if source.startswith(("http://", "https://")):
        url = source if source.rstrip("/").endswith("/export") else source.rstrip("/") + EXPORT_PATH
        if not api_key:
            raise ConfigurationError("reading the export from a node needs the auditor's API key (--api-key)")
        try:
            response = httpx.get(url, headers={"Authorization": f"Bearer {api_key}"}, timeout=TIMEOUT_S)
        except httpx.TransportError as exc:
            raise ConfigurationError(f"cannot read the export at {url} ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise ConfigurationError(f"the node refused the export at {url}: HTTP {response.status_code}")
        text = response.text
    else:
        path = Path(source)
        if not path.is_file():
            raise ConfigurationError(f"no export file at {path}")
        text = path.read_text()
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            uuid.UUID(row["id"])
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            raise ConfigurationError(f"export line {number} is not a transfer ({exc})") from None
        rows.append(row)
    return rows


def _number(value: object) -> int | None:
    return None if value is None else int(str(value))


def check_export(rows: list[dict[str, Any]], ledger: Ledger, check: Check) -> None:
    by_id = {uuid_to_id(row["id"]): row for row in rows}
    check.checked = len(rows)
    for row in rows:
        ident = uuid_to_id(row["id"])
        status = row.get("status")
        if status == "FINAL":
            _check_final(row, ident, ledger, check)
        elif status == "REFUNDED":
            _check_refunded(row, ident, ledger, check)
    for ident, settled in ledger.settlements.items():
        found = by_id.get(ident)
        if found is None or (found.get("status") not in ("SETTLED", "FINAL") and not found.get("settlement")):
            check.fail(
                "settlement on chain missing from the export",
                uetr=str(id_to_uuid(ident)),
                tx=settled.tx_hash,
                export_status=found.get("status") if found else "absent",
            )
    for ident, refunded in ledger.refunds.items():
        found = by_id.get(ident)
        if found is None or (found.get("status") != "REFUNDED" and not found.get("refund")):
            check.fail(
                "refund on chain missing from the export",
                uetr=str(id_to_uuid(ident)),
                tx=refunded.tx_hash,
                export_status=found.get("status") if found else "absent",
            )


def _check_final(row: dict[str, Any], ident: bytes, ledger: Ledger, check: Check) -> None:
    """A FINAL transfer of the export against its settlement event (and its escrow's figures)."""
    settled = ledger.settlements.get(ident)
    if settled is None:
        check.fail("export says FINAL, the chain holds no settlement", uetr=row["id"])
        return
    escrow = next(iter(ledger.escrows.get(ident, [])), None)
    a = settled.args
    # A netted settlement carries its sell leg itself; a gross one's is in its escrow.
    sell_leg = (
        (a["sellAmount"], a["sellCurrency"], a["debtor"])
        if settled.name == "InstructionNetted"
        else (escrow.sell_amount, escrow.sell_currency, escrow.debtor)
        if escrow
        else (None, None, None)
    )
    chain = {
        "buy_amount": a["buyAmount"],
        "fee": a["fee"],
        "creditor": a["creditor"],
        "buy_currency": a["buyCurrency"],
        "sell_amount": sell_leg[0],
        "sell_currency": sell_leg[1],
        "debtor": sell_leg[2],
    }
    for key, value in chain.items():
        exported = _number(row.get(key)) if isinstance(value, int) else row.get(key)
        if exported != value:
            check.fail(
                "export's figure differs from the chain's",
                uetr=row["id"],
                field=key,
                export=exported,
                chain=value,
                tx=settled.tx_hash,
            )
    reference = row.get("settlement") or {}
    if reference.get("tx_hash") not in (None, settled.tx_hash):
        check.fail(
            "export names another settlement transaction",
            uetr=row["id"],
            export=reference.get("tx_hash"),
            chain=settled.tx_hash,
        )


def _check_refunded(row: dict[str, Any], ident: bytes, ledger: Ledger, check: Check) -> None:
    """A REFUNDED transfer of the export against its refund event."""
    refunded = ledger.refunds.get(ident)
    if refunded is None:
        check.fail("export says REFUNDED, the chain holds no refund", uetr=row["id"])
    elif _number(row.get("sell_amount")) != refunded.args["amount"]:
        check.fail(
            "export's figure differs from the chain's",
            uetr=row["id"],
            field="sell_amount",
            export=row.get("sell_amount"),
            chain=refunded.args["amount"],
            tx=refunded.tx_hash,
        )
