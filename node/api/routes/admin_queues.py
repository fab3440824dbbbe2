"""``/v1/admin/queues``: every bank's queue of transfers waiting for a net settlement cycle."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import select

from node.api.deps import Operator, ReadSession
from node.api.guard import JsonRoute
from node.store.models import Bank, Transfer
from settlement.lifecycle import ReasonCode
from settlement.lifecycle import TransferStatus as S

router = APIRouter(prefix="/v1/admin", tags=["admin"], route_class=JsonRoute)


class QueuedAmount(BaseModel):
    currency: str = Field(description="ISO 4217 code of the sell currency")
    amount: str = Field(description="minor units queued, as a decimal string")
    transfers: int


class BankQueue(BaseModel):
    bic: str
    queued: int = Field(description="transfers QUEUED")
    waiting_for_cover: int = Field(description="of which the last cycle could not fund (`insufficient_cover`)")
    in_cycle: int = Field(description="of which in a settlement cycle being sent")
    oldest: dt.datetime | None = Field(description="when the oldest queued transfer was received (UTC)")
    by_currency: list[QueuedAmount]


class QueuesPage(BaseModel):
    data: list[BankQueue] = Field(description="every bank with a transfer queued, by BIC")


@router.get(
    "/queues",
    response_model=QueuesPage,
    summary="Every bank's queue: transfers waiting for a net settlement cycle",
)
def queues(session: ReadSession, _: Operator) -> QueuesPage:
    banks = {b.id: b.bic for b in session.scalars(select(Bank))}
    rows = session.execute(
        select(
            Transfer.bank_id,
            Transfer.sell_currency,
            Transfer.sell_amount,
            Transfer.status_code,
            Transfer.resolve_tx_id,
            Transfer.created_at,
        ).where(Transfer.status == S.QUEUED.value)
    )
    counts: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    oldest: dict[int, dt.datetime] = {}
    amounts: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for bank_id, ccy, amount, code, tx_id, created in rows:
        c = counts[bank_id]
        c[0] += 1
        c[1] += code == ReasonCode.INSUFFICIENT_COVER
        c[2] += tx_id is not None
        oldest[bank_id] = min(oldest.get(bank_id, created), created)
        amounts[bank_id][ccy][0] += amount
        amounts[bank_id][ccy][1] += 1
    data = [
        BankQueue(
            bic=banks[bank_id],
            queued=c[0],
            waiting_for_cover=c[1],
            in_cycle=c[2],
            oldest=oldest.get(bank_id),
            by_currency=[
                QueuedAmount(currency=ccy, amount=str(total), transfers=n)
                for ccy, (total, n) in sorted(amounts[bank_id].items())
            ],
        )
        for bank_id, c in counts.items()
    ]
    return QueuesPage(data=sorted(data, key=lambda q: q.bic))
