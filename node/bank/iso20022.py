"""A bank's side of ISO 20022: a pacs.008.001.08 credit transfer written as Corridor maps it (the
README's table), for the demo, the tests and a bank's first integration."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element, SubElement, tostring

from node.iso20022.schemas import NAMESPACE_PREFIX

PACS008 = "pacs.008.001.08"


@dataclass(frozen=True, slots=True)
class Party:
    name: str
    country: str
    iban: str | None = None
    account: str | None = None
    """An account that is not an IBAN (``Othr/Id``)."""


@dataclass(frozen=True, slots=True)
class CreditTransfer:
    """One customer credit transfer between two banks of the network."""

    debtor_agent: str
    creditor_agent: str
    amount: str
    """The interbank settlement amount, a decimal in the sell currency (``"2500.00"``)."""
    currency: str
    creditor_currency: str
    rate: str
    """The worst rate the debtor agent accepts: buy units per sell unit (``XchgRate``)."""
    nonce: int
    debtor: Party
    creditor: Party
    remittance: str = ""
    settle_by: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    uetr: str = field(default_factory=lambda: str(uuid.uuid4()))
    msg_id: str = field(default_factory=lambda: "MSG" + uuid.uuid4().hex[:24])
    end_to_end_id: str = field(default_factory=lambda: "E2E" + uuid.uuid4().hex[:24])


def pacs008(t: CreditTransfer, message: str = PACS008) -> bytes:
    """The pacs.008 document of ``t`` (valid against the schema of ``message``: .08 to .13 share these elements)."""
    doc = Element("Document", {"xmlns": NAMESPACE_PREFIX + message})
    body = SubElement(doc, "FIToFICstmrCdtTrf")
    header = SubElement(body, "GrpHdr")
    _text(header, "MsgId", t.msg_id)
    _text(header, "CreDtTm", dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    _text(header, "NbOfTxs", "1")
    _text(SubElement(header, "SttlmInf"), "SttlmMtd", "CLRG")
    tx = SubElement(body, "CdtTrfTxInf")
    ids = SubElement(tx, "PmtId")
    _text(ids, "InstrId", str(t.nonce))
    _text(ids, "EndToEndId", t.end_to_end_id)
    _text(ids, "UETR", t.uetr)
    _text(tx, "IntrBkSttlmAmt", t.amount, Ccy=t.currency)
    settle_by = t.settle_by.astimezone(dt.UTC)
    _text(tx, "IntrBkSttlmDt", settle_by.date().isoformat())
    _text(SubElement(tx, "SttlmTmReq"), "TillTm", settle_by.strftime("%H:%M:%SZ"))
    _text(tx, "XchgRate", t.rate)
    _text(tx, "ChrgBr", "SHAR")
    _party(tx, "Dbtr", t.debtor)
    _account(tx, "DbtrAcct", t.debtor, None)
    _agent(tx, "DbtrAgt", t.debtor_agent)
    _agent(tx, "CdtrAgt", t.creditor_agent)
    _party(tx, "Cdtr", t.creditor)
    _account(tx, "CdtrAcct", t.creditor, t.creditor_currency)
    if t.remittance:
        _text(SubElement(tx, "RmtInf"), "Ustrd", t.remittance)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + bytes(tostring(doc, encoding="utf-8"))


def _text(parent: Element, tag: str, value: str, **attributes: str) -> None:
    SubElement(parent, tag, attributes).text = value


def _party(tx: Element, tag: str, party: Party) -> None:
    element = SubElement(tx, tag)
    _text(element, "Nm", party.name)
    _text(SubElement(element, "PstlAdr"), "Ctry", party.country)


def _account(tx: Element, tag: str, party: Party, currency: str | None) -> None:
    if party.iban is None and party.account is None and currency is None:
        return
    account = SubElement(tx, tag)
    ident = SubElement(account, "Id")
    if party.iban is not None:
        _text(ident, "IBAN", party.iban)
    else:
        _text(SubElement(ident, "Othr"), "Id", party.account or "unknown")
    if currency is not None:
        _text(account, "Ccy", currency)


def _agent(tx: Element, tag: str, bic: str) -> None:
    _text(SubElement(SubElement(tx, tag), "FinInstnId"), "BICFI", bic)
