"""ISO 20022 messages the node sends: what a status change of a transfer becomes for a bank that
speaks ISO 20022 (the webhook's ``iso20022`` format), and what a bank fetches.

The debtor bank gets a pacs.002 for every state its transfer enters, a pacs.004 when it is
refunded after an escrow, and a camt.054 debit notification when it is FINAL; the creditor bank
a camt.054 credit notification when a payment to it is FINAL.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from node.iso20022 import camt, pacs002, pacs004
from node.store.models import Bank, IsoDocument, Transfer
from settlement.audit.state import Ledger
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


def returned(session: Session, transfer: Transfer, code: str, reason: str, at: dt.datetime) -> pacs004.Returned:
    """A refund of ``transfer``'s escrowed sell amount to its debtor, for its pacs.004."""
    reported = step(session, transfer, TransferStatus.REFUNDED.value, code, reason, at, None, None)
    return pacs004.Returned(
        uetr=transfer.id,
        debtor_bic=reported.debtor_bic,
        amount_minor=transfer.sell_amount,
        currency=transfer.sell_currency,
        code=code,
        reason=reason,
        at=at,
        original_message=reported.original_message,
        original_msg_id=reported.original_msg_id,
        end_to_end_id=reported.end_to_end_id,
    )


def booking(
    session: Session, transfer: Transfer, credit: bool, at: dt.datetime, tx_hash: str, block: int
) -> tuple[str, camt.Entry]:
    """A FINAL transfer as booked on one side: the debtor's debit of the sell amount, or the
    creditor's credit of the amount bought; with the BIC of the bank it is booked for."""
    debtor = session.get(Bank, transfer.bank_id)
    creditor = session.scalar(select(Bank).where(Bank.address == transfer.creditor))
    assert debtor is not None and creditor is not None
    document = session.get(IsoDocument, transfer.id)
    amount, code = (
        (transfer.buy_amount or 0, transfer.buy_currency)
        if credit
        else (
            transfer.sell_amount,
            transfer.sell_currency,
        )
    )
    entry = camt.Entry(
        amount_minor=amount,
        currency=code,
        credit=credit,
        booked_at=at,
        tx_hash=tx_hash,
        block=block,
        kind="settlement",
        uetr=transfer.id,
        end_to_end_id=document.end_to_end_id if document else None,
        counterparty_bic=debtor.bic if credit else creditor.bic,
    )
    return (creditor.bic if credit else debtor.bic), entry


def render(session: Session, body: dict[str, Any]) -> bytes | None:
    """The ISO 20022 message of a webhook delivery's body, or None when it has none (the JSON body is sent)."""
    if body.get("type") not in ("transfer.status_changed", "transfer.booked"):
        return None
    data = body["data"]
    transfer = session.get(Transfer, data["transfer_id"])
    if transfer is None:
        return None
    chain = data.get("chain") or {}
    at = dt.datetime.fromisoformat(body["created_at"])
    status = TransferStatus(data["status"])
    if body["type"] == "transfer.booked" or data["role"] == "creditor":
        if status is not TransferStatus.FINAL or not chain:
            return None
        bic, entry = booking(session, transfer, data["role"] == "creditor", at, chain["tx_hash"], chain["block_number"])
        return camt.notification(bic, entry)
    if status is TransferStatus.REFUNDED:
        return pacs004.payment_return(returned(session, transfer, data["status_code"], data["reason"], at))
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


def day_statement(
    ledger: Ledger, timestamps: dict[int, int], address: str, bic: str, code: str, day: dt.date, now: dt.datetime
) -> bytes:
    """The camt.053 of ``bic``'s account in ``code`` for ``day``, from the ledger rebuilt from the
    chain's events (the movements ``corridor audit --statements`` lists)."""
    booked = available = 0
    entries: list[camt.Entry] = []
    opening: camt.Balances | None = None
    for m in ledger.movements:
        if m.participant != address or m.currency != code:
            continue
        at = dt.datetime.fromtimestamp(timestamps[m.block], dt.UTC)
        if at.date() > day:
            break
        if at.date() == day and opening is None:
            opening = camt.Balances(booked, available)
        booked, available = booked + m.available + m.escrowed, available + m.available
        moved = m.available + m.escrowed
        if at.date() == day and moved != 0:
            entries.append(camt.Entry(abs(moved), code, moved > 0, at, m.tx_hash, m.block, m.kind, m.uetr or None))
    closing = camt.Balances(booked, available)
    return camt.statement(bic, code, day, opening or closing, closing, entries, now)
