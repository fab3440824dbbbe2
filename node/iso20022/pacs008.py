"""pacs.008 (FI to FI customer credit transfer) in: a valid document mapped to Corridor's signed
instruction, by the table in the README ("ISO 20022").

The mapping is a pure function of the document and the directory, so the typed data a bank
signs (``POST /v1/iso20022/pacs.008/instruction``) and the instruction its submission is checked
against (``POST /v1/iso20022/pacs.008``) are the same by construction. The parties' names,
accounts, addresses and the remittance information go into the details, whose keccak-256 is the
instruction's ``detailsHash``; never on chain.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pycountry
from eth_utils.crypto import keccak
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException

from node.errors import Refusal, Refused
from node.iso20022.schemas import NAMESPACE_PREFIX, PACS008_VERSIONS, read
from settlement.eip712 import CompactSignature, Instruction, checksum_address, uuid_to_id
from settlement.errors import UnknownCurrencyError
from settlement.money import currency

NONCE_DIGITS_MAX = 20
"""``InstrId`` carries the nonce as a decimal: at most 20 digits (below 2^64, Permit2-style words)."""
_DIGITS = re.compile(rf"[0-9]{{1,{NONCE_DIGITS_MAX}}}")
_DECIMAL = re.compile(r"([0-9]+)(?:\.([0-9]+))?")


@dataclass(frozen=True, slots=True)
class Pacs008:
    """One credit transfer of a valid pacs.008, mapped: what the bank signs, and what identifies the message."""

    message: str
    msg_id: str
    uetr: str
    end_to_end_id: str
    tx_id: str | None
    debtor_bic: str
    creditor_bic: str
    terms: Terms
    """The instruction's fields but the debtor and creditor addresses (the directory's, by BIC)."""
    details: str
    """The details' exact JSON text (keys sorted, no spaces), whose keccak-256 is ``details_hash``."""
    sha256: str
    """Of the document's bytes as received: the same UETR with another document is refused."""

    def instruction(self, debtor: str, creditor: str) -> Instruction:
        """The EIP-712 instruction the document maps to, between these two addresses: what the bank signs."""
        t = self.terms
        return Instruction(
            id=uuid_to_id(self.uetr),
            nonce=t.nonce,
            debtor=checksum_address(debtor),
            creditor=checksum_address(creditor),
            sell_currency=t.sell_currency.encode(),
            sell_amount=t.sell_amount,
            buy_currency=t.buy_currency.encode(),
            min_buy_amount=t.min_buy_amount,
            deadline=t.deadline,
            details_hash=bytes.fromhex(t.details_hash[2:]),
        )

    def submission(self, debtor: str, creditor: str, signature: CompactSignature | None = None) -> Submission:
        """What intake checks (:class:`node.submission.TransferCreate`'s shape): the instruction with the
        parties' addresses, the signature (zero when only the typed data is wanted) and the details."""
        t = self.terms
        instruction = SubmittedInstruction(
            uuid.UUID(self.uetr),
            t.nonce,
            debtor,
            creditor,
            t.sell_currency,
            t.sell_amount,
            t.buy_currency,
            t.min_buy_amount,
            t.deadline,
            t.details_hash,
        )
        signature = signature or CompactSignature(bytes(32), bytes(32))
        return Submission(
            instruction, SubmittedSignature("0x" + signature.r.hex(), "0x" + signature.vs.hex()), self.details
        )


@dataclass(frozen=True, slots=True)
class Terms:
    nonce: int
    sell_currency: str
    sell_amount: int
    buy_currency: str
    min_buy_amount: int
    deadline: int
    details_hash: str


@dataclass(frozen=True, slots=True)
class SubmittedInstruction:
    """:class:`node.submission.InstructionIn` from a document."""

    id: uuid.UUID
    nonce: int
    debtor: str
    creditor: str
    sell_currency: str
    sell_amount: int
    buy_currency: str
    min_buy_amount: int
    deadline: int
    details_hash: str


@dataclass(frozen=True, slots=True)
class SubmittedSignature:
    r: str
    vs: str


@dataclass(frozen=True, slots=True)
class Submission:
    """:class:`node.submission.TransferCreate` from a document: no quote (the node prices it)."""

    instruction: SubmittedInstruction
    signature: SubmittedSignature
    details: str
    quote_id: None = None


def same_bic(a: str, b: str) -> bool:
    """Whether two BICs name the same institution and branch (8 characters mean the head office, XXX)."""
    return a[:8] == b[:8] and (a[8:] or "XXX") == (b[8:] or "XXX")


def parse(xml: bytes) -> Pacs008:
    """Validate ``xml`` against its pacs.008 schema and map its one credit transfer."""
    document = read(xml, PACS008_VERSIONS)
    find = _Finder(document.root, NAMESPACE_PREFIX + document.message)
    if find.text("FIToFICstmrCdtTrf/GrpHdr/NbOfTxs") != "1" or len(find.all("FIToFICstmrCdtTrf/CdtTrfTxInf")) != 1:
        raise _unmappable("GrpHdr/NbOfTxs", "a document carries one credit transfer (CBPR+): send each on its own")
    tx = find.under("FIToFICstmrCdtTrf/CdtTrfTxInf")
    header = find.under("FIToFICstmrCdtTrf/GrpHdr")
    uetr = tx.required("PmtId/UETR", "the UETR identifies the payment end to end and becomes the transfer's id")
    amount = tx.element("IntrBkSttlmAmt")
    assert amount is not None  # the schema requires it
    sell = _currency(amount.get("Ccy", ""), "CdtTrfTxInf/IntrBkSttlmAmt/@Ccy")
    buy = _currency(
        tx.required("CdtrAcct/Ccy", "the creditor account's currency is the currency bought"), "CdtrAcct/Ccy"
    )
    sell_minor = _minor(amount.text or "", sell, "CdtTrfTxInf/IntrBkSttlmAmt")
    rate = tx.required("XchgRate", "the exchange rate is the worst the debtor agent accepts (its slippage bound)")
    debtor_bic = _bic(tx.required("DbtrAgt/FinInstnId/BICFI", "the debtor agent is the sending bank"), "DbtrAgt")
    creditor_bic = _bic(tx.required("CdtrAgt/FinInstnId/BICFI", "the creditor agent is the receiving bank"), "CdtrAgt")
    details = _details(tx, document.message, header.text("MsgId"), uetr)
    terms = Terms(
        nonce=_nonce(tx.text("PmtId/InstrId")),
        sell_currency=sell,
        sell_amount=sell_minor,
        buy_currency=buy,
        min_buy_amount=_min_buy(sell_minor, sell, buy, rate),
        deadline=_deadline(tx.text("IntrBkSttlmDt") or header.text("IntrBkSttlmDt"), tx.text("SttlmTmReq/TillTm")),
        details_hash="0x" + keccak(details.encode()).hex(),
    )
    return Pacs008(
        message=document.message,
        msg_id=header.text("MsgId") or "",
        uetr=uetr,
        end_to_end_id=tx.text("PmtId/EndToEndId") or "",
        tx_id=tx.text("PmtId/TxId"),
        debtor_bic=debtor_bic,
        creditor_bic=creditor_bic,
        terms=terms,
        details=details,
        sha256=hashlib.sha256(xml).hexdigest(),
    )


class _Finder:
    """Namespace-qualified lookups of slash-separated paths under one element."""

    def __init__(self, root: Any, namespace: str) -> None:
        self.root = root
        self.ns = {"d": namespace}

    def _path(self, path: str) -> str:
        return "/".join(f"d:{step}" for step in path.split("/"))

    def element(self, path: str) -> Any:
        return self.root.find(self._path(path), self.ns)

    def all(self, path: str) -> list[Any]:
        return list(self.root.findall(self._path(path), self.ns))

    def under(self, path: str) -> _Finder:
        found = self.element(path)
        assert found is not None, path  # the schema requires it
        return _Finder(found, self.ns["d"])

    def text(self, path: str) -> str | None:
        found = self.element(path)
        return None if found is None or found.text is None else found.text.strip()

    def texts(self, path: str) -> list[str]:
        return [e.text.strip() for e in self.all(path) if e.text]

    def required(self, path: str, why: str) -> str:
        value = self.text(path)
        if not value:
            raise _unmappable(path, f"{path} is missing: {why}")
        return value


def _unmappable(element: str, message: str) -> Refused:
    return Refused(Refusal.ISO_UNMAPPABLE, message, {"element": element})


def _currency(code: str, element: str) -> str:
    try:
        return currency(code).code
    except UnknownCurrencyError:
        raise Refused(Refusal.UNKNOWN_CURRENCY, f"{code!r} is not an ISO 4217 currency", {"element": element}) from None


def _minor(text: str, code: str, element: str) -> int:
    """A decimal amount in ``code``'s minor units; more decimals than the currency has is refused."""
    match = _DECIMAL.fullmatch(text.strip())
    exponent = currency(code).exponent
    if match is None:
        raise _unmappable(element, f"{text!r} is not a decimal amount")
    whole, fraction = match.group(1), (match.group(2) or "").rstrip("0")
    if len(fraction) > exponent:
        raise Refused(
            Refusal.INVALID_AMOUNT,
            f"{text} {code} has more decimals than {code} has ({exponent})",
            {"element": element, "exponent": exponent},
        )
    unit: int = 10**exponent
    return int(whole) * unit + int(fraction.ljust(exponent, "0") or "0")


def _min_buy(sell_minor: int, sell: str, buy: str, rate: str) -> int:
    """The least the creditor receives: the sell amount at ``XchgRate`` (units of the buy currency per
    unit of the sell currency), rounded down in the buy currency's minor unit. Integer arithmetic
    on the rate's digits: no float, no rounding but the last."""
    match = _DECIMAL.fullmatch(rate)
    if match is None:
        raise _unmappable("XchgRate", f"{rate!r} is not a decimal rate")
    fraction = match.group(2) or ""
    numerator = int(match.group(1) + fraction)
    scale: int = 10 ** (len(fraction) + currency(sell).exponent)
    buy_unit: int = 10 ** currency(buy).exponent
    return sell_minor * numerator * buy_unit // scale


def _nonce(instr_id: str | None) -> int:
    if instr_id is None or not _DIGITS.fullmatch(instr_id):
        raise _unmappable(
            "PmtId/InstrId",
            "PmtId/InstrId must be your bank's instruction nonce, a decimal number of at most "
            f"{NONCE_DIGITS_MAX} digits (GET /v1/me gives the next free one)",
        )
    return int(instr_id)


def _deadline(date: str | None, till: str | None) -> int:
    """Unix seconds: the settlement date at ``SttlmTmReq/TillTm`` (UTC unless it has an offset), or
    the end of that day in UTC."""
    if date is None:
        raise _unmappable("IntrBkSttlmDt", "IntrBkSttlmDt is missing: the settlement date bounds the deadline")
    day = dt.date.fromisoformat(date[:10])
    if till is None:
        at = dt.datetime.combine(day, dt.time(23, 59, 59), dt.UTC)
    else:
        time = dt.time.fromisoformat(till.replace("Z", "+00:00"))
        at = dt.datetime.combine(day, time if time.tzinfo else time.replace(tzinfo=dt.UTC))
    return int(at.timestamp())


def _bic(value: str, element: str) -> str:
    try:
        return str(BIC(value))
    except SchwiftyException as exc:
        raise Refused(Refusal.INVALID_BIC, f"{element}: {value} is not a BIC: {exc}", {"field": element}) from None


def _iban(value: str, element: str) -> str:
    try:
        return str(IBAN(value).compact)
    except SchwiftyException as exc:
        raise Refused(
            Refusal.INVALID_IBAN, f"{element}: {value} is not a valid IBAN: {exc}", {"element": element}
        ) from None


def _party(tx: _Finder, party: str, account: str) -> dict[str, str]:
    """A customer's name, country and account (an IBAN checked by its checksum, or another id)."""
    found: dict[str, str] = {}
    if name := tx.text(f"{party}/Nm"):
        found["name"] = name
    if country := tx.text(f"{party}/PstlAdr/Ctry") or tx.text(f"{party}/CtryOfRes"):
        if pycountry.countries.get(alpha_2=country) is None:
            raise Refused(
                Refusal.INVALID_COUNTRY, f"{party}: {country} is not an ISO 3166 country code", {"element": party}
            )
        found["country"] = country
    if iban := tx.text(f"{account}/Id/IBAN"):
        found["account"] = _iban(iban, f"{account}/Id/IBAN")
    elif other := tx.text(f"{account}/Id/Othr/Id"):
        found["account"] = other
    return found


def _details(tx: _Finder, message: str, msg_id: str | None, uetr: str) -> str:
    details: Mapping[str, Any] = {
        "beneficiary": _party(tx, "Cdtr", "CdtrAcct"),
        "ordering_customer": _party(tx, "Dbtr", "DbtrAcct"),
        "remittance": " ".join(tx.texts("RmtInf/Ustrd")),
        "iso20022": {
            k: v
            for k, v in {
                "message": message,
                "msg_id": msg_id,
                "uetr": uetr,
                "end_to_end_id": tx.text("PmtId/EndToEndId"),
                "tx_id": tx.text("PmtId/TxId"),
            }.items()
            if v
        },
    }
    return json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
