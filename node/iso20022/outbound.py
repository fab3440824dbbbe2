"""ISO 20022 messages the node sends: what a status change of a transfer becomes for a bank that
speaks ISO 20022 (the webhook's ``iso20022`` format), and the status report a bank fetches.

The debtor bank gets a pacs.002 for every state its transfer enters.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from node.iso20022 import pacs002
from node.store.models import Bank, IsoDocument, Transfer
from settlement.lifecycle import TransferStatus

XML = "application/xml"


def step(
    session: Session,
    transfer: Transfer,
    status: str,
    code: str,
    reason: str,
    at: dt.datetime,
    tx_hash: str | None,
    block_number: int | None,
) -> pacs002.Step:
    """A state ``transfer`` entered, with what identifies the payment the report is about: the
    debtor bank, and the pacs.008 it came in as (if it did)."""
    bank = session.get(Bank, transfer.bank_id)
    assert bank is not None
    document = session.get(IsoDocument, transfer.id)
    return pacs002.Step(
        uetr=transfer.id,
        debtor_bic=bank.bic,
        status=TransferStatus(status),
        code=code,
        reason=reason,
        at=at,
        tx_hash=tx_hash,
        block_number=block_number,
        original_message=document.message if document else pacs002.JSON_MESSAGE,
        original_msg_id=document.msg_id if document else None,
        end_to_end_id=document.end_to_end_id if document else None,
    )


def render(session: Session, body: dict[str, Any]) -> bytes | None:
    """The ISO 20022 message of a webhook delivery's body, or None when it has none (the JSON body is sent)."""
    if body.get("type") != "transfer.status_changed":
        return None
    data = body["data"]
    transfer = session.get(Transfer, data["transfer_id"])
    if transfer is None or data["role"] != "debtor":
        return None
    chain = data.get("chain") or {}
    at = dt.datetime.fromisoformat(body["created_at"])
    reported = step(
        session,
        transfer,
        data["status"],
        data["status_code"],
        data["reason"],
        at,
        chain.get("tx_hash"),
        chain.get("block_number"),
    )
    return pacs002.report(reported)
