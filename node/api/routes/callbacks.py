"""What the node POSTs to the webhooks registered with it, documented as OpenAPI 3.1 ``webhooks``.

Nothing here is served: these are the requests a bank's (or the operator's) endpoint receives.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header
from pydantic import BaseModel, Field

from settlement.lifecycle import TransferStatus

router = APIRouter()


class DeliveryChain(BaseModel):
    tx_hash: str
    block_number: int
    log_index: int


class TransferStatusChangedData(BaseModel):
    transfer_id: str = Field(description="the UETR")
    role: Literal["debtor", "creditor"] = Field(description="yours in this transfer")
    status: TransferStatus
    status_code: str = Field(description="machine-readable reason (empty when none)")
    reason: str
    sell_currency: str
    sell_amount: int
    buy_currency: str
    buy_amount: int | None = Field(description="set from SETTLED on")
    fee: int | None = Field(description="set from SETTLED on")
    chain: DeliveryChain | None = Field(description="the event that made the change (null for changes off chain)")


class TransferStatusChanged(BaseModel):
    """The body of a ``transfer.status_changed`` delivery."""

    id: uuid.UUID = Field(description="the delivery's id, as in Corridor-Delivery: the same on every retry")
    type: Literal["transfer.status_changed"]
    created_at: dt.datetime
    data: TransferStatusChangedData


class MismatchData(BaseModel):
    run_id: int
    kind: str = Field(description="chain_balance, escrowed or transfer")
    subject: str
    expected: str
    found: str
    detail: str


class ReconciliationMismatch(BaseModel):
    """The body of a ``reconciliation.mismatch`` delivery (to the operator's webhook)."""

    id: uuid.UUID
    type: Literal["reconciliation.mismatch"]
    created_at: dt.datetime
    data: MismatchData


SIGNATURE = Annotated[
    str,
    Header(
        alias="webhook-signature",
        description="Standard Webhooks: `v1,` and the base64 HMAC-SHA256 of `<webhook-id>.<webhook-timestamp>.<raw "
        "body>` under the base64-decoded key after `whsec_` in your secret (several, space-separated, once a "
        "secret is rotated): compare in constant time before you trust the body",
        pattern=r"^v1,[A-Za-z0-9+/=]{44}( v1,[A-Za-z0-9+/=]{44})*$",
    ),
]
DELIVERY = Annotated[
    str, Header(alias="webhook-id", description="the delivery's UUID, the same on every retry: drop a repeat")
]
TIMESTAMP = Annotated[
    str,
    Header(
        alias="webhook-timestamp",
        description="unix seconds of this attempt, signed: refuse one more than 300 s from your clock (a replay)",
        pattern=r"^[0-9]{1,12}$",
    ),
]
ACKNOWLEDGED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "any 2xx acknowledges the delivery; anything else (or no answer within the "
        "node's timeout) is retried after 1, 2, 4 ... s up to the node's bound"
    }
}


@router.post(
    "transfer.status_changed",
    summary="A transfer of yours changed status",
    description=(
        "Sent to the debtor bank at every status change, RECEIVED included, and to the creditor bank when a "
        "payment to it is FINAL (`data.role` says which you are); with `format: iso20022` the debtor's "
        "deliveries are the transfer's pacs.002 (`application/xml`) instead. Deliveries of one transfer may "
        "arrive out of order when one is retried: order them by the status's place in the lifecycle, not by arrival."
    ),
    responses=ACKNOWLEDGED,
)
def transfer_status_changed(
    body: TransferStatusChanged, signature: SIGNATURE, delivery: DELIVERY, timestamp: TIMESTAMP
) -> None:
    """Documentation only."""


@router.post(
    "reconciliation.mismatch",
    summary="The store and the chain disagree (operator)",
    description="Sent to `CORRIDOR_NODE_OPERATOR_WEBHOOK_URL`, signed with its secret, for each new mismatch.",
    responses=ACKNOWLEDGED,
)
def reconciliation_mismatch(
    body: ReconciliationMismatch, signature: SIGNATURE, delivery: DELIVERY, timestamp: TIMESTAMP
) -> None:
    """Documentation only."""
