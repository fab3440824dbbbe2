"""pacs.004 (payment return) out: a transfer refunded to its debtor after it was escrowed, with the
reason as an ISO external return reason code."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from xml.etree.ElementTree import SubElement

from node.iso20022.schemas import PACS004
from node.iso20022.xml import amount, document, finish, message_id, path, text, timestamp
from settlement.lifecycle import ReasonCode

ADDITIONAL_INFO_MAX = 105
REASONS: dict[str, str] = {
    ReasonCode.DEADLINE_PASSED: "TM01",
    "InstructionExpired": "TM01",
    ReasonCode.SANCTIONS_BIC: "RR04",
    ReasonCode.SANCTIONS_COUNTRY: "RR04",
    ReasonCode.SANCTIONS_NAME: "RR04",
    ReasonCode.REVIEW_SCREENING: "RR04",
    ReasonCode.BANK_FROZEN: "AC06",
    ReasonCode.INSUFFICIENT_FUNDS: "AM04",
}
"""A refund's reason code -> ISO ExternalReturnReason1Code (TM01: past the cut-off, the instruction's
deadline); NARR with the text otherwise."""


@dataclass(frozen=True, slots=True)
class Returned:
    uetr: str
    debtor_bic: str
    amount_minor: int
    currency: str
    code: str
    reason: str
    at: dt.datetime
    original_message: str
    original_msg_id: str | None
    end_to_end_id: str | None


def payment_return(r: Returned) -> bytes:
    doc = document(PACS004)
    body = SubElement(doc, "PmtRtr")
    header = SubElement(body, "GrpHdr")
    text(header, "MsgId", message_id("pacs.004", r.uetr))
    text(header, "CreDtTm", timestamp(r.at))
    text(header, "NbOfTxs", "1")
    text(path(header, "InstdAgt/FinInstnId"), "BICFI", r.debtor_bic)
    compact = r.uetr.replace("-", "")
    original = SubElement(body, "OrgnlGrpInf")
    text(original, "OrgnlMsgId", r.original_msg_id or compact)
    text(original, "OrgnlMsgNmId", r.original_message)
    tx = SubElement(body, "TxInf")
    text(tx, "OrgnlEndToEndId", r.end_to_end_id or compact)
    text(tx, "OrgnlTxId", compact)
    amount(tx, "RtrdIntrBkSttlmAmt", r.amount_minor, r.currency)
    why = SubElement(tx, "RtrRsnInf")
    text(SubElement(why, "Rsn"), "Cd", REASONS.get(r.code, "NARR"))
    if r.reason:
        text(why, "AddtlInf", r.reason[:ADDITIONAL_INFO_MAX])
    return finish(doc, PACS004)
