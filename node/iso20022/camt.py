"""camt.054 (debit and credit notifications) and camt.053 (end-of-day statements) out.

A bank's account here is its balance in one currency in the vault, identified as
``CORRIDOR-<BIC>-<currency>`` and owned by its BIC. The booked balance is what the vault holds
for the bank (available and escrowed): an escrow reserves funds without moving them out, so
only settlements, deposits and withdrawals are entries; the available balance is reported
beside it (``OPAV``/``CLAV``).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from xml.etree.ElementTree import Element, SubElement

from node.iso20022.schemas import CAMT053, CAMT054
from node.iso20022.xml import amount, document, finish, message_id, path, text, timestamp

SERVICER = "Corridor"
_UETR = re.compile(r"[a-f0-9]{8}-[a-f0-9]{4}-4[a-f0-9]{3}-[89ab][a-f0-9]{3}-[a-f0-9]{12}")


@dataclass(frozen=True, slots=True)
class Entry:
    """One booking on a bank's account: a payment's leg, a deposit or a withdrawal."""

    amount_minor: int
    """Positive: the sign is ``credit``."""
    currency: str
    credit: bool
    booked_at: dt.datetime
    tx_hash: str
    block: int
    kind: str
    """settlement, netted, deposit, withdrawal, fee ... (the ledger's movement kind)."""
    uetr: str | None = None
    end_to_end_id: str | None = None
    counterparty_bic: str | None = None


def account_id(bic: str, code: str) -> str:
    return f"CORRIDOR-{bic}-{code}"


def _account(parent: Element, bic: str, code: str) -> None:
    account = SubElement(parent, "Acct")
    text(path(account, "Id/Othr"), "Id", account_id(bic, code))
    text(account, "Ccy", code)
    text(path(account, "Ownr/Id/OrgId"), "AnyBIC", bic)


def _entry(parent: Element, e: Entry) -> None:
    ntry = SubElement(parent, "Ntry")
    amount(ntry, "Amt", e.amount_minor, e.currency)
    text(ntry, "CdtDbtInd", "CRDT" if e.credit else "DBIT")
    text(path(ntry, "Sts"), "Cd", "BOOK")
    text(path(ntry, "BookgDt"), "DtTm", timestamp(e.booked_at))
    text(path(ntry, "ValDt"), "DtTm", timestamp(e.booked_at))
    code = SubElement(ntry, "BkTxCd")
    domain = SubElement(code, "Domn")
    text(domain, "Cd", "PMNT")
    family = SubElement(domain, "Fmly")
    text(family, "Cd", "RCDT" if e.credit else "ICDT")
    text(family, "SubFmlyCd", "XBCT")
    proprietary = SubElement(code, "Prtry")
    text(proprietary, "Cd", e.kind)
    text(proprietary, "Issr", SERVICER)
    tx = path(ntry, "NtryDtls/TxDtls")
    refs = SubElement(tx, "Refs")
    if e.end_to_end_id:
        text(refs, "EndToEndId", e.end_to_end_id)
    if e.uetr and _UETR.fullmatch(e.uetr):
        text(refs, "UETR", e.uetr)
    amount(tx, "Amt", e.amount_minor, e.currency)
    text(tx, "CdtDbtInd", "CRDT" if e.credit else "DBIT")
    if e.counterparty_bic:
        side = "DbtrAgt" if e.credit else "CdtrAgt"
        text(path(tx, f"RltdAgts/{side}/FinInstnId"), "BICFI", e.counterparty_bic)
    text(tx, "AddtlTxInf", f"tx {e.tx_hash} block {e.block}")
    text(ntry, "AddtlNtryInf", f"on chain: tx {e.tx_hash}, block {e.block}")


def notification(bic: str, entry: Entry) -> bytes:
    """The camt.054 telling ``bic`` of one booking on its account."""
    ident = message_id("camt.054", bic, entry.tx_hash, entry.uetr or "", "C" if entry.credit else "D")
    doc = document(CAMT054)
    body = SubElement(doc, "BkToCstmrDbtCdtNtfctn")
    header = SubElement(body, "GrpHdr")
    text(header, "MsgId", ident)
    text(header, "CreDtTm", timestamp(entry.booked_at))
    notice = SubElement(body, "Ntfctn")
    text(notice, "Id", ident)
    text(notice, "CreDtTm", timestamp(entry.booked_at))
    _account(notice, bic, entry.currency)
    _entry(notice, entry)
    return finish(doc, CAMT054)


@dataclass(frozen=True, slots=True)
class Balances:
    booked: int
    available: int


def statement(
    bic: str, code: str, day: dt.date, opening: Balances, closing: Balances, entries: list[Entry], at: dt.datetime
) -> bytes:
    """The camt.053 of ``bic``'s account in ``code`` for ``day``: opening and closing booked and
    available balances, one entry per booking."""
    ident = message_id("camt.053", bic, code, day.isoformat(), str(closing.booked), str(len(entries)))
    doc = document(CAMT053)
    body = SubElement(doc, "BkToCstmrStmt")
    header = SubElement(body, "GrpHdr")
    text(header, "MsgId", ident)
    text(header, "CreDtTm", timestamp(at))
    stmt = SubElement(body, "Stmt")
    text(stmt, "Id", f"{bic}-{code}-{day.isoformat()}")
    text(stmt, "CreDtTm", timestamp(at))
    span = SubElement(stmt, "FrToDt")
    start = dt.datetime.combine(day, dt.time(0), dt.UTC)
    text(span, "FrDtTm", timestamp(start))
    text(span, "ToDtTm", timestamp(start + dt.timedelta(days=1) - dt.timedelta(milliseconds=1)))
    _account(stmt, bic, code)
    for kind, value, when in (
        ("OPBD", opening.booked, day),
        ("OPAV", opening.available, day),
        ("CLBD", closing.booked, day),
        ("CLAV", closing.available, day),
    ):
        balance = SubElement(stmt, "Bal")
        text(path(balance, "Tp/CdOrPrtry"), "Cd", kind)
        amount(balance, "Amt", value, code)
        text(balance, "CdtDbtInd", "CRDT" if value >= 0 else "DBIT")
        text(path(balance, "Dt"), "Dt", when.isoformat())
    summary = path(stmt, "TxsSummry/TtlNtries")
    text(summary, "NbOfNtries", str(len(entries)))
    for entry in entries:
        _entry(stmt, entry)
    return finish(doc, CAMT053)
