"""``/v1/iso20022``: a bank's payments as ISO 20022 messages. pacs.008 in (the typed data to sign
for a document, then the document with its signature), pacs.002 out (a transfer's latest status).

The document is the envelope, the bank's EIP-712 signature of the instruction it maps to (the
README's table) the authority: a submitted document goes through the same intake as
``POST /v1/transfers``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from node import intake, transfers
from node.api import views
from node.api.deps import CurrentBank, IdempotencyKey, RawBody, Reader, ServicesDep
from node.api.errors import INTAKE_CODES
from node.api.openapi import responses
from node.api.routes._idempotent import run_post
from node.api.routes.transfers import accept_context
from node.auth import Principal
from node.errors import Refusal, Refused
from node.iso20022 import camt, outbound, pacs002, pacs004, pacs008
from node.iso20022.schemas import CAMT053, CAMT054, PACS002, PACS004, PACS008_VERSIONS
from node.services import Services
from node.store.models import Bank, IsoDocument, Transfer, TransferEvent
from settlement.audit import audit_checks, replay_chain
from settlement.chain.rpc import Rpc
from settlement.eip712 import CompactSignature, checksum_address, typed_data
from settlement.errors import ChainError
from settlement.lifecycle import TransferStatus

router = APIRouter(prefix="/v1/iso20022", tags=["iso20022"])

XML_TYPES = ("application/xml", "text/xml")
SIGNATURE_HEADER = "Corridor-Signature"
DOCUMENT_CODES = (
    Refusal.UNSUPPORTED_MEDIA_TYPE,
    Refusal.ISO_INVALID,
    Refusal.ISO_UNSUPPORTED,
    Refusal.ISO_UNMAPPABLE,
    Refusal.INVALID_IBAN,
    Refusal.INVALID_BIC,
    Refusal.INVALID_COUNTRY,
    Refusal.INVALID_AMOUNT,
    Refusal.UNKNOWN_CURRENCY,
    Refusal.DEBTOR_MISMATCH,
    Refusal.UNKNOWN_BANK,
)
"""What a pacs.008 may be refused with before its instruction reaches intake."""
MAPPED_INTAKE_CODES = tuple(
    c
    for c in INTAKE_CODES
    if c
    not in (
        Refusal.UNKNOWN_QUOTE,
        Refusal.QUOTE_EXPIRED,
        Refusal.QUOTE_MISMATCH,
        Refusal.DETAILS_MISMATCH,
        Refusal.INVALID_DETAILS,
    )
)
"""Intake's refusals but those of a quote or of details a bank wrote: a document names no quote, and
its details are the mapping's."""
_XML_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            t: {"schema": {"type": "string", "description": f"a Document of {', '.join(PACS008_VERSIONS)}"}}
            for t in XML_TYPES
        },
    }
}

_XML_OK: dict[int | str, dict[str, Any]] = {200: {"content": {"application/xml": {"schema": {"type": "string"}}}}}

Signature = Annotated[
    str | None,
    Header(
        alias=SIGNATURE_HEADER,
        max_length=140,
        description=(
            "your bank's EIP-712 signature of the instruction the document maps to (the `typed_data` of "
            "POST /v1/iso20022/pacs.008/instruction), as 0x-prefixed hex: 64 bytes (EIP-2098 r, vs) or 65 (r, s, v)"
        ),
    ),
]


def _document(request: Request, raw: bytes) -> pacs008.Pacs008:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in XML_TYPES:
        raise Refused(
            Refusal.UNSUPPORTED_MEDIA_TYPE,
            f"this route takes an ISO 20022 document as XML, not {media or 'a body without a Content-Type'}",
            {"accepted": list(XML_TYPES)},
        )
    return pacs008.parse(raw)


def _parties(svc: Services, who: Principal, doc: pacs008.Pacs008) -> tuple[str, str]:
    """The debtor's and creditor's addresses: the caller's bank must be the debtor agent."""
    with svc.store.transaction(write=False) as session:
        banks = list(session.scalars(select(Bank)))
    bank = next(b for b in banks if b.id == who.bank_id)
    if not pacs008.same_bic(doc.debtor_bic, bank.bic):
        raise Refused(
            Refusal.DEBTOR_MISMATCH,
            f"the debtor agent {doc.debtor_bic} is not your bank ({bank.bic})",
            {"element": "DbtrAgt/FinInstnId/BICFI"},
        )
    creditor = next((b for b in banks if pacs008.same_bic(b.bic, doc.creditor_bic)), None)
    if creditor is None:
        raise Refused(
            Refusal.UNKNOWN_BANK,
            f"the creditor agent {doc.creditor_bic} is not a bank in the directory (GET /v1/banks)",
            {"element": "CdtrAgt/FinInstnId/BICFI"},
        )
    return bank.address, creditor.address


def _signature(header: str | None) -> CompactSignature:
    text = (header or "").removeprefix("0x")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) == 64:
        return CompactSignature(raw[:32], raw[32:])
    if len(raw) == 65:
        v = raw[64] if raw[64] >= 27 else raw[64] + 27
        try:
            return CompactSignature.from_rsv(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"), v)
        except ValueError as exc:
            raise Refused(Refusal.BAD_SIGNATURE, f"the {SIGNATURE_HEADER} header: {exc}") from None
    raise Refused(
        Refusal.INVALID_REQUEST,
        f"the {SIGNATURE_HEADER} header must be your bank's signature as 0x-prefixed hex of 64 or 65 bytes",
        {"problems": [{"field": f"header.{SIGNATURE_HEADER}", "problem": "missing, or not 64 or 65 bytes of hex"}]},
    )


def _hex(value: Any) -> Any:
    """Typed data as JSON: bytes values as 0x-prefixed hex, which eth-account and wallets read."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, dict):
        return {k: _hex(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_hex(v) for v in value]
    return value


@router.post(
    "/pacs.008/instruction",
    summary="The instruction a pacs.008 maps to, as EIP-712 typed data to sign",
    description=(
        "Validates the document against its XSD and maps it (the README's table). Sign `typed_data` with your "
        "bank's key (eth-account: `Account.sign_typed_data(key, full_message=typed_data)`) and send the document "
        f"to POST /v1/iso20022/pacs.008 with the signature in the `{SIGNATURE_HEADER}` header. Stores nothing."
    ),
    responses=responses(*DOCUMENT_CODES),
    openapi_extra=_XML_BODY,
)
def instruction(svc: ServicesDep, who: CurrentBank, request: Request, raw: RawBody) -> dict[str, Any]:
    doc = _document(request, raw)
    debtor, creditor = _parties(svc, who, doc)
    signed = doc.instruction(debtor, creditor)
    return {
        "uetr": doc.uetr,
        "message": doc.message,
        "typed_data": _hex(typed_data(svc.domain, signed)),
        "details": doc.details,
    }


@router.post(
    "/pacs.008",
    status_code=202,
    summary="Submit a pacs.008 with your bank's signature of its instruction",
    description=(
        "The document (pacs.008.001.08, or .09 to .13) is validated against its XSD, mapped to the instruction "
        f"(the README's table) and checked with the signature in `{SIGNATURE_HEADER}` exactly as POST "
        "/v1/transfers checks a JSON instruction; the transfer's id is the document's UETR. The same document "
        "again returns the same transfer; another document with the same UETR is refused (409). The document "
        "is kept beside the transfer."
    ),
    responses=responses(*DOCUMENT_CODES, *MAPPED_INTAKE_CODES, Refusal.INVALID_REQUEST, Refusal.ISO_DOCUMENT_MISMATCH),
    openapi_extra=_XML_BODY,
)
def submit(
    svc: ServicesDep,
    who: CurrentBank,
    request: Request,
    raw: RawBody,
    signature: Signature = None,
    key: IdempotencyKey = None,
) -> JSONResponse:
    doc = _document(request, raw)
    sig = _signature(signature)
    debtor, creditor = _parties(svc, who, doc)
    submitted = doc.submission(debtor, creditor, sig)
    ctx = accept_context(svc, [submitted])
    verified = [intake.verify(submitted, svc.domain)]

    def work(session: Session) -> dict[str, Any]:
        known = session.get(IsoDocument, doc.uetr)
        if known is not None:
            if known.sha256 != doc.sha256:
                raise Refused(
                    Refusal.ISO_DOCUMENT_MISMATCH,
                    f"UETR {doc.uetr} was submitted with another document (message {known.msg_id})",
                    {"uetr": doc.uetr, "msg_id": known.msg_id},
                )
            return views.transfer_public(transfers.get_visible(session, who, doc.uetr)).model_dump(mode="json")
        [result] = intake.accept(session, who, verified, ctx)
        if isinstance(result, Refused):
            raise result
        session.add(
            IsoDocument(
                transfer_id=result,
                message=doc.message,
                msg_id=doc.msg_id,
                end_to_end_id=doc.end_to_end_id,
                tx_id=doc.tx_id,
                sha256=doc.sha256,
                xml=raw.decode("utf-8", "replace"),
            )
        )
        return views.transfer_public(transfers.get_visible(session, who, result)).model_dump(mode="json")

    return run_post(svc, who, request, raw + b"\n" + sig.r + sig.vs, key, 202, work)


@router.get(
    "/pacs.002/{uetr}",
    summary="A transfer's latest status as a pacs.002",
    description=(
        f"The {PACS002} status report of the transfer's latest state (the README's status and reason-code "
        "tables): ACTC accepted, ACSP queued, escrowed or settled but not final, ACSC FINAL (never before), RJCT "
        "with an ISO reason code, PDNG waiting for an operator."
    ),
    response_class=Response,
    responses=_XML_OK | responses(Refusal.NOT_FOUND),
)
def status_report(uetr: str, svc: ServicesDep, who: Reader) -> Response:
    with svc.store.transaction(write=False) as session:
        transfer = transfers.get_visible(session, who, uetr)
        entry = session.scalars(
            select(TransferEvent)
            .where(TransferEvent.transfer_id == transfer.id)
            .order_by(TransferEvent.id.desc())
            .limit(1)
        ).one()
        step = outbound.step(
            session, transfer, entry.status, entry.code, entry.reason, entry.at, entry.tx_hash, entry.block_number
        )
        return Response(pacs002.report(step), media_type="application/xml")


def _latest(session: Session, transfer_id: str, status: TransferStatus | None = None) -> TransferEvent | None:
    query = select(TransferEvent).where(TransferEvent.transfer_id == transfer_id)
    if status is not None:
        query = query.where(TransferEvent.status == status.value)
    return session.scalars(query.order_by(TransferEvent.id.desc()).limit(1)).first()


@router.get(
    "/pacs.004/{uetr}",
    summary="The return of a transfer refunded after its escrow, as a pacs.004",
    description=(
        f"The {PACS004} payment return of a REFUNDED transfer: the sell amount returned to your bank, with an ISO "
        "return reason code (TM01 deadline passed, RR04 screening, AC06 frozen, NARR otherwise) and the reason."
    ),
    response_class=Response,
    responses=_XML_OK | responses(Refusal.NOT_FOUND),
)
def payment_return(uetr: str, svc: ServicesDep, who: Reader) -> Response:
    with svc.store.transaction(write=False) as session:
        transfer = transfers.get_visible(session, who, uetr)
        entry = _latest(session, transfer.id, TransferStatus.REFUNDED)
        if entry is None:
            raise Refused(Refusal.NOT_FOUND, f"transfer {transfer.id} was not refunded (it is {transfer.status})")
        returned = outbound.returned(session, transfer, entry.code, entry.reason, entry.at)
        return Response(pacs004.payment_return(returned), media_type=outbound.XML)


@router.get(
    "/camt.054/{uetr}",
    summary="A FINAL transfer as booked on your account, as a camt.054",
    description=(
        f"The {CAMT054} debit notification of a FINAL transfer your bank sent (the sell amount), or the credit "
        "notification of one it received (the amount bought), with the chain's transaction and block."
    ),
    response_class=Response,
    responses=_XML_OK | responses(Refusal.NOT_FOUND),
)
def booking_notification(uetr: str, svc: ServicesDep, who: CurrentBank) -> Response:
    with svc.store.transaction(write=False) as session:
        bank = session.get(Bank, who.bank_id)
        transfer = session.get(Transfer, uetr) if _is_uuid(uetr) else None
        assert bank is not None
        credit = transfer is not None and transfer.creditor == bank.address and transfer.bank_id != bank.id
        if transfer is None or not (credit or transfer.bank_id == bank.id):
            raise Refused(Refusal.NOT_FOUND, f"no transfer {uetr} sent or received by your bank")
        final = _latest(session, transfer.id, TransferStatus.FINAL)
        settled = _latest(session, transfer.id, TransferStatus.SETTLED)
        if final is None or settled is None or settled.tx_hash is None or settled.block_number is None:
            raise Refused(Refusal.NOT_FOUND, f"transfer {transfer.id} is not FINAL (it is {transfer.status})")
        bic, entry = outbound.booking(session, transfer, credit, final.at, settled.tx_hash, settled.block_number)
        return Response(camt.notification(bic, entry), media_type=outbound.XML)


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


@router.get(
    "/camt.053",
    summary="Your end-of-day statement for a currency, from the chain, as a camt.053",
    description=(
        f"The {CAMT053} statement of your bank's account in `currency` for `date` (UTC), rebuilt from the vault's "
        "confirmed events (the same movements as `corridor audit --statements`): opening and closing booked "
        "balance (available and escrowed: an escrow reserves, it does not move money out) and available balance, "
        "and one entry per booking with its UETR, transaction hash and block. Today's statement closes at the "
        "latest confirmed block."
    ),
    response_class=Response,
    responses=_XML_OK | responses(Refusal.UNKNOWN_CURRENCY, Refusal.CHAIN_UNAVAILABLE),
)
def day_statement(
    svc: ServicesDep,
    who: CurrentBank,
    currency: Annotated[str, Query(pattern="^[A-Z]{3}$", description="ISO 4217 code of a currency your bank holds")],
    date: Annotated[dt.date | None, Query(description="the day (YYYY-MM-DD, UTC); default today")] = None,
) -> Response:
    with svc.store.transaction(write=False) as session:
        bank = session.get(Bank, who.bank_id)
    assert bank is not None
    if currency not in bank.currencies:
        raise Refused(
            Refusal.UNKNOWN_CURRENCY,
            f"your bank holds no {currency} here; it holds {', '.join(bank.currencies)}",
            {"field": "currency"},
        )
    now = dt.datetime.now(dt.UTC)
    if date is not None and date > now.date():
        raise Refused(
            Refusal.INVALID_REQUEST,
            f"date: {date} has not begun (today is {now.date()} UTC)",
            {"problems": [{"field": "query.date", "problem": "a statement is for today or a day before"}]},
        )
    try:
        with Rpc(svc.settings.rpc_url) as rpc:
            confirmed = rpc.block_number() - svc.settings.confirmations + 1
            ledger, logs = replay_chain(
                rpc, svc.manifest, max(confirmed, svc.manifest.deployment_block), audit_checks()
            )
    except (ChainError, OSError) as exc:
        raise Refused(Refusal.CHAIN_UNAVAILABLE, f"the chain did not answer: {exc}") from None
    xml = outbound.day_statement(
        ledger, logs.timestamps, checksum_address(bank.address), bank.bic, currency, date or now.date(), now
    )
    return Response(xml, media_type=outbound.XML)
