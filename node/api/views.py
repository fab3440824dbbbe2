"""The API's views of the node's rows."""

from __future__ import annotations

from node.api.schemas import (
    ChainReference,
    ReviewPublic,
    TransferEventPublic,
    TransferPublic,
)
from node.store.models import Transfer
from settlement.lifecycle import TransferStatus


def transfer_public(transfer: Transfer, head: int | None = None) -> TransferPublic:
    """The API's view of a transfer; ``head`` (the watcher's newest block) gives confirmations."""
    return TransferPublic(
        id=transfer.id,
        status=TransferStatus(transfer.status),
        status_reason=transfer.status_reason,
        status_code=transfer.status_code,
        debtor=transfer.debtor,
        creditor=transfer.creditor,
        sell_currency=transfer.sell_currency,
        sell_amount=transfer.sell_amount,
        buy_currency=transfer.buy_currency,
        min_buy_amount=transfer.min_buy_amount,
        buy_amount=transfer.buy_amount,
        fee=transfer.fee,
        deadline=transfer.deadline,
        quote_id=transfer.quote_id,
        review=ReviewPublic(
            state=transfer.review,
            code=transfer.review_code,
            reason=transfer.review_reason,
            reviewed_at=transfer.reviewed_at,
        )
        if transfer.review
        else None,
        created_at=transfer.created_at,
        updated_at=transfer.updated_at,
        history=[
            TransferEventPublic(
                status=TransferStatus(e.status),
                reason=e.reason,
                code=e.code,
                at=e.at,
                chain=ChainReference(
                    tx_hash=e.tx_hash,
                    block_number=e.block_number,
                    log_index=e.log_index,
                    confirmations=None if head is None or e.block_number is None else max(0, head - e.block_number + 1),
                )
                if e.tx_hash
                else None,
            )
            for e in transfer.events
        ],
    )
