"""pacs.002 (FI to FI payment status report) out: one for each state a transfer enters, built from
its history entry, so the report of a step is always the same message (the same ``MsgId``),
whether a bank fetches it or receives it by webhook.

Status, by the README's table: ACTC when accepted, ACSP while queued, escrowed or settled but not
yet final, ACSC only when FINAL, RJCT (rejected, or refunded to the debtor) with an ISO external
status reason code, PDNG when the transfer waits for an operator (FAILED).

The shipped pacs.002.001.12 schema (``xsd/SOURCES.md``) has no ``OrgnlUETR``: the report's
``OrgnlTxId`` is the UETR's 32 hexadecimal digits without hyphens (a Max35Text cannot hold its
36 characters); ``OrgnlEndToEndId`` is the pacs.008's ``EndToEndId`` (the same 32 digits for a
transfer submitted as JSON).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from xml.etree.ElementTree import SubElement

from node.iso20022.schemas import PACS002
from node.iso20022.xml import document, finish, message_id, path, text, timestamp
from settlement.lifecycle import ReasonCode, TransferStatus

ADDITIONAL_INFO_MAX = 105
"""``AddtlInf`` is a Max105Text."""
JSON_MESSAGE = "corridor.transfer.v1"
"""``OrgnlMsgNmId`` of a transfer submitted as JSON through ``POST /v1/transfers``."""

STATUS = {
    TransferStatus.RECEIVED: "ACTC",
    TransferStatus.QUEUED: "ACSP",
    TransferStatus.ESCROWED: "ACSP",
    TransferStatus.SETTLED: "ACSP",
    TransferStatus.FINAL: "ACSC",
    TransferStatus.REJECTED: "RJCT",
    TransferStatus.REFUNDED: "RJCT",
    TransferStatus.FAILED: "PDNG",
}
"""Corridor's state -> ISO ExternalPaymentTransactionStatus1Code."""

REASONS: dict[str, str] = {
    ReasonCode.INSUFFICIENT_FUNDS: "AM04",
    ReasonCode.INSUFFICIENT_COVER: "AM04",
    "InsufficientAvailable": "AM04",
    ReasonCode.SANCTIONS_BIC: "RR04",
    ReasonCode.SANCTIONS_COUNTRY: "RR04",
    ReasonCode.SANCTIONS_NAME: "RR04",
    ReasonCode.REVIEW_SCREENING: "RR04",
    ReasonCode.CORRIDOR_PAIR: "AG01",
    ReasonCode.CORRIDOR_COUNTRY: "AG01",
    ReasonCode.VELOCITY_PER_MINUTE: "AG01",
    ReasonCode.NEW_BENEFICIARY_BURST: "AG01",
    ReasonCode.LIMIT_PER_TRANSFER: "AM02",
    ReasonCode.REVIEW_AMOUNT: "AM02",
    ReasonCode.DAILY_OUTFLOW: "AM14",
    ReasonCode.NET_DEBIT_CAP: "AM14",
    ReasonCode.BANK_FROZEN: "AC06",
    ReasonCode.DEADLINE_PASSED: "AB05",
    "InstructionExpired": "AB05",
    "InstructionNonceUsed": "DUPL",
    ReasonCode.CANCELLED: "CUST",
}
"""A transfer's reason code (or the vault's custom error) -> ISO ExternalStatusReason1Code; NARR otherwise."""


@dataclass(frozen=True, slots=True)
class Step:
    """One entry of a transfer's history, and what identifies the payment it reports on."""

    uetr: str
    debtor_bic: str
    status: TransferStatus
    code: str
    reason: str
    at: dt.datetime
    """When the transfer entered the state (its history entry's time, the webhook's ``created_at``)."""
    tx_hash: str | None = None
    block_number: int | None = None
    original_message: str = JSON_MESSAGE
    original_msg_id: str | None = None
    end_to_end_id: str | None = None


def status_reason(step: Step) -> tuple[str | None, str]:
    """The ISO reason code (None for a status that needs none) and the additional information."""
    iso = STATUS[step.status]
    if iso == "RJCT":
        return REASONS.get(step.code, "NARR"), step.reason
    if step.status in (TransferStatus.SETTLED, TransferStatus.FINAL) and step.tx_hash:
        return None, f"on chain: block {step.block_number} tx {step.tx_hash}"
    if step.status is TransferStatus.FAILED:
        return "NARR", step.reason
    return None, step.reason


def report_id(step: Step) -> str:
    """Deterministic per step (the transfer, the state and when it was entered)."""
    return message_id(step.uetr, step.status.value, step.at.astimezone(dt.UTC).isoformat(timespec="microseconds"))


def report(step: Step) -> bytes:
    """The pacs.002 of ``step``, valid against the shipped schema."""
    doc = document(PACS002)
    body = SubElement(doc, "FIToFIPmtStsRpt")
    header = SubElement(body, "GrpHdr")
    text(header, "MsgId", report_id(step))
    text(header, "CreDtTm", timestamp(step.at))
    text(path(header, "InstdAgt/FinInstnId"), "BICFI", step.debtor_bic)
    original = SubElement(body, "OrgnlGrpInfAndSts")
    text(original, "OrgnlMsgId", step.original_msg_id or step.uetr.replace("-", ""))
    text(original, "OrgnlMsgNmId", step.original_message)
    tx = SubElement(body, "TxInfAndSts")
    compact = step.uetr.replace("-", "")
    text(tx, "OrgnlEndToEndId", step.end_to_end_id or compact)
    text(tx, "OrgnlTxId", compact)
    text(tx, "TxSts", STATUS[step.status])
    code, info = status_reason(step)
    if code is not None or info:
        why = SubElement(tx, "StsRsnInf")
        if code is not None:
            text(SubElement(why, "Rsn"), "Cd", code)
        if info:
            text(why, "AddtlInf", info[:ADDITIONAL_INFO_MAX])
    return finish(doc, PACS002)
