"""Intake: a bank's signed instruction checked and, if it passes, recorded as RECEIVED.

Every check runs before anything is written; the transfer, its first history entry, its
audit entry and its webhook rows are written in the caller's transaction, which commits
before the 202 is sent. A refused instruction stores nothing and is answered with a
:class:`node.errors.Refused` naming the check.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils.crypto import keccak
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from node.auth import Principal, Role
from node.errors import Refusal, Refused
from node.notify import webhooks
from node.ops import audit_log
from node.ops.rules import beneficiary_key
from node.rate_band import RateCeiling
from node.store.db import insert_rows
from node.store.models import Bank, NetworkState, Quote, Transfer, TransferEvent, WebhookDelivery
from node.submission import InstructionIn, TransferCreate
from node.transitions import LOCK_CHUNK
from settlement.eip712 import (
    CompactSignature,
    Domain,
    Instruction,
    checksum_address,
    recover,
    uuid_to_id,
)
from settlement.lifecycle import ParticipantKind, TransferStatus

RECEIVED_REASON = "accepted: signature verified"


@dataclass(frozen=True, slots=True)
class AcceptContext:
    domain: Domain
    currencies: frozenset[str]
    now_s: int
    deadline_min_s: int
    deadline_max_s: int
    ceilings: Mapping[tuple[str, str], RateCeiling] = dataclasses.field(default_factory=dict)
    """Per (sell, buy): what the vault's band allows; a pair without one (no chain, no rate yet) is not checked."""
    queue_max: int | None = None
    """A bank's transfers waiting (RECEIVED or QUEUED) at most; None: no bound."""


def _queue_full(waiting: int, queue_max: int | None) -> Refused | None:
    if queue_max is None or waiting < queue_max:
        return None
    return Refused(
        Refusal.QUEUE_FULL,
        f"your bank has {waiting} transfers waiting to settle, the most this node queues: send again once some "
        "have settled",
        {"waiting": waiting, "queue_max": queue_max},
    )


def _waiting(session: Session, bank_id: int) -> int:
    """The bank's transfers not yet on chain: RECEIVED or QUEUED."""
    waiting = (TransferStatus.RECEIVED.value, TransferStatus.QUEUED.value)
    return int(
        session.scalar(
            select(func.count()).select_from(Transfer).where(Transfer.bank_id == bank_id, Transfer.status.in_(waiting))
        )
        or 0
    )


def instruction_of(i: InstructionIn | Transfer) -> Instruction:
    """The EIP-712 instruction of a submitted body or of a stored transfer (same field names)."""
    stored = isinstance(i, Transfer)  # stored addresses are checksummed already (by accept)
    return Instruction(
        id=uuid_to_id(i.id),
        nonce=i.nonce,
        debtor=i.debtor if stored else checksum_address(i.debtor),
        creditor=i.creditor if stored else checksum_address(i.creditor),
        sell_currency=i.sell_currency.encode(),
        sell_amount=i.sell_amount,
        buy_currency=i.buy_currency.encode(),
        min_buy_amount=i.min_buy_amount,
        deadline=i.deadline,
        details_hash=bytes.fromhex(i.details_hash[2:]),
    )


@dataclass(frozen=True, slots=True)
class Verified:
    """What is checked of a submitted instruction without the store: the signer it recovers to and
    its details. Done before the write transaction, so that the store's writer is not held by it."""

    body: TransferCreate
    instruction: Instruction
    signer: str | None
    details: dict[str, Any] | Refused | None


def verify(body: TransferCreate, domain: Domain) -> Verified:
    instruction = instruction_of(body.instruction)
    signature = CompactSignature(bytes.fromhex(body.signature.r[2:]), bytes.fromhex(body.signature.vs[2:]))
    try:
        signer: str | None = recover(domain, instruction, signature)
    except Exception:
        signer = None
    details: dict[str, Any] | Refused | None = None
    if body.details is not None:
        try:
            details = _check_details(body)
        except Refused as exc:
            details = exc
    return Verified(body, instruction, signer, details)


def accept(
    session: Session, principal: Principal, items: Sequence[Verified], ctx: AcceptContext
) -> list[str | Refused]:
    """Check signed instructions and record those that pass as RECEIVED, in the caller's
    transaction; one result per item, in order: the transfer's id, or the error refusing it.

    Every check of one item runs before anything of it is written, so a refused item stores
    nothing. The rows are written together (one statement per table), which is what lets a
    batch of 200 commit in a few milliseconds.
    """
    assert principal.role is Role.BANK and principal.bank_id is not None
    results: list[str | Refused] = []
    bank = session.get(Bank, principal.bank_id)
    assert bank is not None
    state = session.get(NetworkState, 1)
    directory = {b.address: b for b in session.scalars(select(Bank))}
    checked: list[tuple[int, Verified, Bank, Quote | None]] = []
    for item in items:
        try:
            creditor = _check(item, bank, state, directory, ctx)
            quote = _check_quote(session, principal, item.body, ctx.now_s) if item.body.quote_id else None
        except Refused as exc:
            results.append(exc)
            continue
        checked.append((len(results), item, creditor, quote))
        results.append("")
    taken_ids, taken_nonces = _taken(session, bank.address, [item.body.instruction for _, item, _, _ in checked])
    waiting = _waiting(session, bank.id) if ctx.queue_max is not None and checked else 0
    now = dt.datetime.now(dt.UTC)
    rows: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    entries: list[tuple[str, str, str, dict[str, Any]]] = []
    deliveries: list[dict[str, Any]] = []
    for index, item, creditor, quote in checked:
        i = item.body.instruction
        uetr = str(i.id)
        if uetr in taken_ids:
            results[index] = Refused(Refusal.DUPLICATE_UETR, f"a transfer with UETR {uetr} exists: a UETR is used once")
            continue
        if i.nonce in taken_nonces:
            results[index] = Refused(Refusal.NONCE_USED, f"nonce {i.nonce} was used by another of your transfers")
            continue
        if (full := _queue_full(waiting, ctx.queue_max)) is not None:
            results[index] = full
            continue
        waiting += 1
        taken_ids.add(uetr)
        taken_nonces.add(i.nonce)
        row = _received_row(item, bank, quote, now)
        rows.append(row)
        history.append(
            {
                "transfer_id": uetr,
                "status": TransferStatus.RECEIVED.value,
                "reason": RECEIVED_REASON,
                "code": "",
                "at": now,
            }
        )
        entries.append((f"bank:{bank.bic}", "transfer.status", f"transfer:{uetr}", _audit_change(i, creditor)))
        deliveries += webhooks.deliveries(
            session, webhooks.Accepted.of(row), TransferStatus.RECEIVED, RECEIVED_REASON, now=now
        )
        results[index] = uetr
    insert_rows(session, Transfer, rows)
    insert_rows(session, TransferEvent, history)
    audit_log.append_many(session, entries)
    insert_rows(session, WebhookDelivery, deliveries)
    return results


def _received_row(item: Verified, bank: Bank, quote: Quote | None, now: dt.datetime) -> dict[str, Any]:
    """The ``transfers`` row of an accepted instruction."""
    i, instruction = item.body.instruction, item.instruction
    details = item.details if isinstance(item.details, dict) else None
    return {
        "id": str(i.id),
        "bank_id": bank.id,
        "nonce": i.nonce,
        "debtor": instruction.debtor,
        "creditor": instruction.creditor,
        "sell_currency": i.sell_currency,
        "sell_amount": i.sell_amount,
        "buy_currency": i.buy_currency,
        "min_buy_amount": i.min_buy_amount,
        "deadline": i.deadline,
        "details_hash": i.details_hash,
        "signature_r": item.body.signature.r,
        "signature_vs": item.body.signature.vs,
        "quote_id": quote.id if quote else None,
        "beneficiary_key": beneficiary_key(instruction.creditor, details),
        "status": TransferStatus.RECEIVED.value,
        "status_reason": RECEIVED_REASON,
        "status_code": "",
        "details": details,
        "created_at": now,
        "updated_at": now,
    }


def _audit_change(i: InstructionIn, creditor: Bank) -> dict[str, Any]:
    return {
        "to": TransferStatus.RECEIVED.value,
        "reason": RECEIVED_REASON,
        "sell": f"{i.sell_amount} {i.sell_currency}",
        "buy_currency": i.buy_currency,
        "creditor": creditor.bic,
    }


def _taken(session: Session, debtor: str, instructions: list[InstructionIn]) -> tuple[set[str], set[int]]:
    """Which of these UETRs, and which of the debtor's nonces, stored transfers already use."""
    ids = [str(i.id) for i in instructions]
    nonces = [i.nonce for i in instructions]
    taken_ids, taken_nonces = set(), set()
    for start in range(0, len(ids), LOCK_CHUNK):
        taken_ids |= set(session.scalars(select(Transfer.id).where(Transfer.id.in_(ids[start : start + LOCK_CHUNK]))))
        taken_nonces |= set(
            session.scalars(
                select(Transfer.nonce).where(
                    Transfer.debtor == debtor, Transfer.nonce.in_(nonces[start : start + LOCK_CHUNK])
                )
            )
        )
    return taken_ids, taken_nonces


def _check(
    item: Verified, bank: Bank, state: NetworkState | None, directory: dict[str, Bank], ctx: AcceptContext
) -> Bank:
    """The creditor bank of one instruction that passes every check but the store's uniqueness ones."""
    i = item.body.instruction
    if state is not None and state.paused:
        raise Refused(Refusal.NETWORK_PAUSED, "the network is paused by its operator; try again later")
    if bank.frozen:
        raise Refused(Refusal.BANK_FROZEN, f"bank {bank.bic} is frozen: it cannot send transfers")
    if i.debtor.lower() != bank.address.lower():
        raise Refused(
            Refusal.DEBTOR_MISMATCH,
            f"the instruction's debtor {i.debtor} is not your bank's address {bank.address}",
            {"field": "instruction.debtor"},
        )
    for field, code in (("sell_currency", i.sell_currency), ("buy_currency", i.buy_currency)):
        if code not in ctx.currencies:
            raise Refused(
                Refusal.UNKNOWN_CURRENCY,
                f"{code} is not settled on this network; listed: {', '.join(sorted(ctx.currencies))}",
                {"field": f"instruction.{field}"},
            )
    if i.sell_currency == i.buy_currency:
        raise Refused(Refusal.SAME_CURRENCY, "sell and buy currency are the same", {"field": "instruction"})
    if i.sell_currency not in bank.currencies:
        raise Refused(
            Refusal.CURRENCY_NOT_HELD,
            f"your bank does not hold {i.sell_currency} on this network",
            {"field": "instruction.sell_currency"},
        )
    creditor = directory.get(item.instruction.creditor)
    if creditor is None or creditor.kind != ParticipantKind.BANK:
        raise Refused(
            Refusal.UNKNOWN_BANK,
            f"{i.creditor} is not a bank in the directory (GET /v1/banks)",
            {"field": "instruction.creditor"},
        )
    if creditor.frozen:
        raise Refused(Refusal.CREDITOR_FROZEN, f"the creditor bank {creditor.bic} is frozen")
    if i.buy_currency not in creditor.currencies:
        raise Refused(
            Refusal.CURRENCY_NOT_RECEIVED,
            f"the creditor bank {creditor.bic} does not receive {i.buy_currency}",
            {"field": "instruction.buy_currency", "creditor_currencies": creditor.currencies},
        )
    earliest, latest = ctx.now_s + ctx.deadline_min_s, ctx.now_s + ctx.deadline_max_s
    if i.deadline < earliest:
        raise Refused(
            Refusal.DEADLINE_TOO_SOON,
            f"the deadline {i.deadline} leaves less than {ctx.deadline_min_s} s to settle (now {ctx.now_s})",
            {"field": "instruction.deadline", "earliest": earliest},
        )
    if i.deadline > latest:
        raise Refused(
            Refusal.DEADLINE_TOO_FAR,
            f"the deadline {i.deadline} is more than {ctx.deadline_max_s} s away",
            {"field": "instruction.deadline", "latest": latest},
        )
    if item.signer is None or item.signer.lower() != bank.address.lower():
        raise Refused(
            Refusal.BAD_SIGNATURE,
            "the signature is not your bank's signature of this instruction (EIP-712, this network's domain)",
            {"recovered": item.signer, "expected": bank.address},
        )
    if isinstance(item.details, Refused):
        raise item.details
    _check_minimum(i, ctx)
    return creditor


def _check_minimum(i: InstructionIn, ctx: AcceptContext) -> None:
    """Refuse a minimum no rate the vault would take could buy (where the pair's ceiling is known)."""
    ceiling = ctx.ceilings.get((i.sell_currency, i.buy_currency))
    if ceiling is not None and i.min_buy_amount > (best := ceiling.best_buy(i.sell_amount)):
        raise Refused(
            Refusal.MIN_BUY_UNREACHABLE,
            f"min_buy_amount {i.min_buy_amount} {i.buy_currency} cannot be met: no rate the vault takes (at most "
            f"{ceiling.band_bps} bps from its reference rate) buys more than {best} for {i.sell_amount} "
            f"{i.sell_currency}",
            {
                "field": "instruction.min_buy_amount",
                "best_buy_amount": best,
                "reference_rate": str(ceiling.reference_rate),
                "band_bps": ceiling.band_bps,
            },
        )


def signature_of(t: Transfer) -> CompactSignature:
    return CompactSignature(bytes.fromhex(t.signature_r[2:]), bytes.fromhex(t.signature_vs[2:]))


def _check_details(body: TransferCreate) -> dict[str, Any]:
    assert body.details is not None
    digest = "0x" + keccak(body.details.encode()).hex()
    if digest != body.instruction.details_hash:
        raise Refused(
            Refusal.DETAILS_MISMATCH,
            "the details' keccak-256 is not the instruction's details_hash: send the exact text that was hashed",
            {"field": "details", "keccak256": digest, "details_hash": body.instruction.details_hash},
        )
    try:
        parsed = json.loads(body.details)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the interpreter's limit
        parsed = None
    if not isinstance(parsed, dict) or not all(
        isinstance(parsed.get(k, {}), dict) for k in ("beneficiary", "ordering_customer")
    ):
        raise Refused(
            Refusal.INVALID_DETAILS,
            "details must be a JSON object; beneficiary and ordering_customer, when given, objects with name, "
            "account and country",
            {"field": "details"},
        )
    return parsed


def _check_quote(session: Session, principal: Principal, body: TransferCreate, now_s: int) -> Quote:
    quote = session.get(Quote, body.quote_id)
    if quote is None or quote.bank_id != principal.bank_id:
        raise Refused(Refusal.UNKNOWN_QUOTE, f"no quote {body.quote_id} was given to your bank")
    i, q = body.instruction, quote.body
    if now_s > quote.expiry:
        raise Refused(Refusal.QUOTE_EXPIRED, f"quote {quote.id} expired at {quote.expiry}; ask for a new one")
    if (q["sell_currency"], q["buy_currency"], q["sell_amount_minor"]) != (
        i.sell_currency,
        i.buy_currency,
        i.sell_amount,
    ):
        raise Refused(
            Refusal.QUOTE_MISMATCH,
            "the instruction's pair and sell amount differ from the quote's",
            {"quote": {k: q[k] for k in ("sell_currency", "buy_currency", "sell_amount_minor", "buy_amount_minor")}},
        )
    if i.min_buy_amount > q["buy_amount_minor"]:
        raise Refused(
            Refusal.QUOTE_MISMATCH,
            f"min_buy_amount {i.min_buy_amount} is more than the quote buys ({q['buy_amount_minor']})",
        )
    return quote
