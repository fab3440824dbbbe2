"""The auditor's export: every transfer with the escrow, settlement and refund events the node applied."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import select

from node.store.db import Store
from node.store.models import ChainEvent, Transfer

EXPORT_CHUNK = 500
_EVENT_KEYS = {
    "InstructionEscrowed": "escrow",
    "InstructionSettled": "settlement",
    "InstructionNetted": "settlement",
    "InstructionRefunded": "refund",
}


def transfer_rows(store: Store) -> Iterator[dict[str, Any]]:
    """Every transfer, oldest first, read in chunks (one short read transaction each)."""
    last = ""
    while True:
        with store.transaction(write=False) as session:
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
