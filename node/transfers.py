"""Accepting a bank's signed instruction, and reading transfers back.

Every check runs before anything is written; the transfer and its first history entry are
written in the caller's transaction, which commits before the 202 is sent.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from eth_utils.crypto import keccak
from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Row
from sqlalchemy.orm import InstrumentedAttribute, Session, load_only
from sqlalchemy.orm.attributes import set_committed_value

from node import metrics
from node.api.errors import ApiError, Conflict, Forbidden, NotFound, Unprocessable
from node.api.schemas import (
    ChainReference,
    InstructionIn,
    ReviewPublic,
    TransferCreate,
    TransferEventPublic,
    TransferPublic,
)
from node.auth import Principal, Role
from node.notify import webhooks
from node.ops import audit_log
from node.ops.rules import beneficiary_key
from node.rate_band import RateCeiling
from node.store.db import insert_rows, update_rows
from node.store.models import Bank, NetworkState, Quote, SeenBlock, Transfer, TransferEvent, WebhookDelivery
from settlement.eip712 import (
    CompactSignature,
    Domain,
    Instruction,
    checksum_address,
    id_to_uuid,
    recover,
    uuid_to_id,
)
from settlement.lifecycle import TransferStatus, check_transition

LOCK_CHUNK = 500
"""Ids per ``SELECT ... FOR UPDATE`` (SQLite binds at most 32,766 parameters per statement)."""


@dataclass(frozen=True, slots=True)
class AcceptContext:
    domain: Domain
    currencies: frozenset[str]
    now_s: int
    deadline_min_s: int
    deadline_max_s: int
    ceilings: Mapping[tuple[str, str], RateCeiling] = dataclasses.field(default_factory=dict)
    """Per (sell, buy): what the vault's band allows; a pair without one (no chain, no rate yet) is not checked."""


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
    details: dict[str, Any] | ApiError | None


def verify(body: TransferCreate, domain: Domain) -> Verified:
    instruction = instruction_of(body.instruction)
    signature = CompactSignature(bytes.fromhex(body.signature.r[2:]), bytes.fromhex(body.signature.vs[2:]))
    try:
        signer: str | None = recover(domain, instruction, signature)
    except Exception:
        signer = None
    details: dict[str, Any] | ApiError | None = None
    if body.details is not None:
        try:
            details = _check_details(body)
        except ApiError as exc:
            details = exc
    return Verified(body, instruction, signer, details)


def accept(
    session: Session, principal: Principal, items: Sequence[Verified], ctx: AcceptContext
) -> list[str | ApiError]:
    """Check signed instructions and record those that pass as RECEIVED, in the caller's
    transaction; one result per item, in order: the transfer's id, or the error refusing it.

    Every check of one item runs before anything of it is written, so a refused item stores
    nothing. The rows are written together (one statement per table), which is what lets a
    batch of 200 commit in a few milliseconds.
    """
    assert principal.role is Role.BANK and principal.bank_id is not None
    results: list[str | ApiError] = []
    bank = session.get(Bank, principal.bank_id)
    assert bank is not None
    state = session.get(NetworkState, 1)
    directory = {b.address: b for b in session.scalars(select(Bank))}
    checked: list[tuple[int, Verified, Bank, Quote | None]] = []
    for item in items:
        try:
            creditor = _check(item, bank, state, directory, ctx)
            quote = _check_quote(session, principal, item.body, ctx.now_s) if item.body.quote_id else None
        except ApiError as exc:
            results.append(exc)
            continue
        checked.append((len(results), item, creditor, quote))
        results.append("")
    taken_ids, taken_nonces = _taken(session, bank.address, [item.body.instruction for _, item, _, _ in checked])
    now = dt.datetime.now(dt.UTC)
    reason = "accepted: signature verified"
    rows: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    entries: list[tuple[str, str, str, dict[str, Any]]] = []
    deliveries: list[dict[str, Any]] = []
    for index, item, creditor, quote in checked:
        i, instruction = item.body.instruction, item.instruction
        uetr = str(i.id)
        if uetr in taken_ids:
            results[index] = Conflict(f"a transfer with UETR {uetr} exists: a UETR is used once", code="duplicate_uetr")
            continue
        if i.nonce in taken_nonces:
            results[index] = Conflict(f"nonce {i.nonce} was used by another of your transfers", code="nonce_used")
            continue
        taken_ids.add(uetr)
        taken_nonces.add(i.nonce)
        details = item.details if isinstance(item.details, dict) else None
        row = {
            "id": uetr,
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
            "status_reason": reason,
            "status_code": "",
            "details": details,
            "created_at": now,
            "updated_at": now,
        }
        rows.append(row)
        history.append(
            {"transfer_id": uetr, "status": TransferStatus.RECEIVED.value, "reason": reason, "code": "", "at": now}
        )
        entries.append(
            (
                f"bank:{bank.bic}",
                "transfer.status",
                f"transfer:{uetr}",
                {
                    "to": TransferStatus.RECEIVED.value,
                    "reason": reason,
                    "sell": f"{i.sell_amount} {i.sell_currency}",
                    "buy_currency": i.buy_currency,
                    "creditor": creditor.bic,
                },
            )
        )
        deliveries += webhooks.deliveries(session, webhooks.Accepted.of(row), TransferStatus.RECEIVED, reason, now=now)
        results[index] = uetr
    insert_rows(session, Transfer, rows)
    insert_rows(session, TransferEvent, history)
    audit_log.append_many(session, entries)
    insert_rows(session, WebhookDelivery, deliveries)
    return results


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
        raise Conflict("the network is paused by its operator; try again later", code="network_paused")
    if bank.frozen:
        raise Forbidden(f"bank {bank.bic} is frozen: it cannot send transfers", code="bank_frozen")
    if i.debtor.lower() != bank.address.lower():
        raise Unprocessable(
            f"the instruction's debtor {i.debtor} is not your bank's address {bank.address}",
            {"field": "instruction.debtor"},
            code="debtor_mismatch",
        )
    for field, code in (("sell_currency", i.sell_currency), ("buy_currency", i.buy_currency)):
        if code not in ctx.currencies:
            raise Unprocessable(
                f"{code} is not settled on this network; listed: {', '.join(sorted(ctx.currencies))}",
                {"field": f"instruction.{field}"},
                code="unknown_currency",
            )
    if i.sell_currency == i.buy_currency:
        raise Unprocessable("sell and buy currency are the same", {"field": "instruction"}, code="same_currency")
    if i.sell_currency not in bank.currencies:
        raise Unprocessable(
            f"your bank does not hold {i.sell_currency} on this network",
            {"field": "instruction.sell_currency"},
            code="currency_not_held",
        )
    creditor = directory.get(item.instruction.creditor)
    if creditor is None or creditor.kind != "bank":
        raise Unprocessable(
            f"{i.creditor} is not a bank in the directory (GET /v1/banks)",
            {"field": "instruction.creditor"},
            code="unknown_bank",
        )
    if creditor.frozen:
        raise Unprocessable(f"the creditor bank {creditor.bic} is frozen", code="creditor_frozen")
    if i.buy_currency not in creditor.currencies:
        raise Unprocessable(
            f"the creditor bank {creditor.bic} does not receive {i.buy_currency}",
            {"field": "instruction.buy_currency", "creditor_currencies": creditor.currencies},
            code="currency_not_received",
        )
    earliest, latest = ctx.now_s + ctx.deadline_min_s, ctx.now_s + ctx.deadline_max_s
    if i.deadline < earliest:
        raise Unprocessable(
            f"the deadline {i.deadline} leaves less than {ctx.deadline_min_s} s to settle (now {ctx.now_s})",
            {"field": "instruction.deadline", "earliest": earliest},
            code="deadline_too_soon",
        )
    if i.deadline > latest:
        raise Unprocessable(
            f"the deadline {i.deadline} is more than {ctx.deadline_max_s} s away",
            {"field": "instruction.deadline", "latest": latest},
            code="deadline_too_far",
        )
    if item.signer is None or item.signer.lower() != bank.address.lower():
        raise Unprocessable(
            "the signature is not your bank's signature of this instruction (EIP-712, this network's domain)",
            {"recovered": item.signer, "expected": bank.address},
            code="bad_signature",
        )
    if isinstance(item.details, ApiError):
        raise item.details
    _check_minimum(i, ctx)
    return creditor


def _check_minimum(i: InstructionIn, ctx: AcceptContext) -> None:
    """Refuse a minimum no rate the vault would take could buy (where the pair's ceiling is known)."""
    ceiling = ctx.ceilings.get((i.sell_currency, i.buy_currency))
    if ceiling is not None and i.min_buy_amount > (best := ceiling.best_buy(i.sell_amount)):
        raise Unprocessable(
            f"min_buy_amount {i.min_buy_amount} {i.buy_currency} cannot be met: no rate the vault takes (at most "
            f"{ceiling.band_bps} bps from its reference rate) buys more than {best} for {i.sell_amount} "
            f"{i.sell_currency}",
            {
                "field": "instruction.min_buy_amount",
                "best_buy_amount": best,
                "reference_rate": str(ceiling.reference_rate),
                "band_bps": ceiling.band_bps,
            },
            code="min_buy_unreachable",
        )


def signature_of(t: Transfer) -> CompactSignature:
    return CompactSignature(bytes.fromhex(t.signature_r[2:]), bytes.fromhex(t.signature_vs[2:]))


def lock_columns(session: Session, ids: list[str], *columns: InstrumentedAttribute[Any]) -> dict[str, Row[Any]]:
    """``columns`` of the transfers ``ids``, locked for update like :func:`lock_for_update`, without
    loading the objects: for a check before a write by :func:`node.store.db.update_rows`."""
    rows: dict[str, Row[Any]] = {}
    for start in range(0, len(ids), LOCK_CHUNK):
        query = select(Transfer.id, *columns).where(Transfer.id.in_(ids[start : start + LOCK_CHUNK]))
        for row in session.execute(query.with_for_update()):
            rows[row.id] = row
    return rows


WATCHED = (
    Transfer.id,
    Transfer.status,
    Transfer.bank_id,
    Transfer.creditor,
    Transfer.sell_currency,
    Transfer.sell_amount,
    Transfer.buy_currency,
    Transfer.buy_amount,
    Transfer.fee,
    Transfer.review,
    Transfer.review_code,
    Transfer.review_reason,
    Transfer.batch_id,
)
"""What the watcher reads of a transfer, and :class:`Transitions` and the webhooks with it."""


def lock_for_update(
    session: Session, ids: list[str], only: Sequence[InstrumentedAttribute[Any]] = ()
) -> dict[str, Transfer]:
    """The transfers ``ids``, locked for update (PostgreSQL; SQLite's writer holds the database).

    With ``only``, just those columns are loaded (reading any other raises): the watcher moves
    thousands of transfers a round, and loading whole rows (details, signatures) cost it more
    than it used.
    """
    rows: dict[str, Transfer] = {}
    options = [load_only(*only, raiseload=True)] if only else []
    for start in range(0, len(ids), LOCK_CHUNK):
        query = select(Transfer).options(*options).where(Transfer.id.in_(ids[start : start + LOCK_CHUNK]))
        query = query.with_for_update()
        for row in session.scalars(query):
            rows[row.id] = row
    return rows


def uetr_of(raw: bytes) -> str:
    """The transfer id (UETR) of a vault ``bytes32`` instruction id; hex if it is not a UETR."""
    try:
        return str(id_to_uuid(bytes(raw)))
    except ValueError:
        return "0x" + bytes(raw).hex()


def _check_details(body: TransferCreate) -> dict[str, Any]:
    assert body.details is not None
    digest = "0x" + keccak(body.details.encode()).hex()
    if digest != body.instruction.details_hash:
        raise Unprocessable(
            "the details' keccak-256 is not the instruction's details_hash: send the exact text that was hashed",
            {"field": "details", "keccak256": digest, "details_hash": body.instruction.details_hash},
            code="details_mismatch",
        )
    try:
        parsed = json.loads(body.details)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the interpreter's limit
        parsed = None
    if not isinstance(parsed, dict) or not all(
        isinstance(parsed.get(k, {}), dict) for k in ("beneficiary", "ordering_customer")
    ):
        raise Unprocessable(
            "details must be a JSON object; beneficiary and ordering_customer, when given, objects with name, "
            "account and country",
            {"field": "details"},
            code="invalid_details",
        )
    return parsed


def _check_quote(session: Session, principal: Principal, body: TransferCreate, now_s: int) -> Quote:
    quote = session.get(Quote, body.quote_id)
    if quote is None or quote.bank_id != principal.bank_id:
        raise Unprocessable(f"no quote {body.quote_id} was given to your bank", code="unknown_quote")
    i, q = body.instruction, quote.body
    if now_s > quote.expiry:
        raise Unprocessable(f"quote {quote.id} expired at {quote.expiry}; ask for a new one", code="quote_expired")
    if (q["sell_currency"], q["buy_currency"], q["sell_amount_minor"]) != (
        i.sell_currency,
        i.buy_currency,
        i.sell_amount,
    ):
        raise Unprocessable(
            "the instruction's pair and sell amount differ from the quote's",
            {"quote": {k: q[k] for k in ("sell_currency", "buy_currency", "sell_amount_minor", "buy_amount_minor")}},
            code="quote_mismatch",
        )
    if i.min_buy_amount > q["buy_amount_minor"]:
        raise Unprocessable(
            f"min_buy_amount {i.min_buy_amount} is more than the quote buys ({q['buy_amount_minor']})",
            code="quote_mismatch",
        )
    return quote


class OnChain(Protocol):
    """Where on chain a step happened (the watcher's event, or a row of ``chain_events``)."""

    @property
    def tx_hash(self) -> str: ...
    @property
    def block_number(self) -> int: ...
    @property
    def log_index(self) -> int: ...


class Transitions:
    """Transfer state changes made in one transaction, written together when it is done.

    :meth:`add` changes the transfer object at once (so a second event for it in the same batch
    sees its new status) and keeps the row's update, its history entry, audit entry and webhook
    deliveries; :meth:`write` runs those with one statement per table. The watcher moves
    hundreds of transfers per block: through the ORM's unit of work, one object at a time, the
    bookkeeping cost more than everything else it did.
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self._updates: list[dict[str, Any]] = []
        self._events: list[dict[str, Any]] = []
        self._entries: list[tuple[str, str, str, dict[str, Any]]] = []
        self._deliveries: list[dict[str, Any]] = []
        self._counts: dict[str, int] = defaultdict(int)

    def __enter__(self) -> Transitions:
        return self

    def __exit__(self, kind: object, *_: object) -> None:
        if kind is None:
            self.write()

    def add(
        self,
        transfer: Transfer,
        status: TransferStatus,
        reason: str,
        ref: OnChain | None = None,
        code: str = "",
        actor: str = "node",
        values: Mapping[str, Any] | None = None,
    ) -> None:
        """Move ``transfer`` to ``status`` (the lifecycle is enforced by
        :func:`settlement.lifecycle.check_transition`), set ``values`` (other columns) with it, and
        owe its history, audit and webhook rows."""
        previous = transfer.status
        check_transition(TransferStatus(previous), status)
        now = dt.datetime.now(dt.UTC)
        changed = {
            "status": status.value,
            "status_reason": reason,
            "status_code": code,
            "updated_at": now,
            **(values or {}),
        }
        for column, value in changed.items():
            # As if loaded: the row is written by write()'s UPDATE, not by the unit of work.
            set_committed_value(transfer, column, value)
        self._updates.append({"id": transfer.id, **changed})
        self._events.append(
            {
                "transfer_id": transfer.id,
                "status": status.value,
                "reason": reason,
                "code": code,
                "at": now,
                "tx_hash": ref.tx_hash if ref else None,
                "block_number": ref.block_number if ref else None,
                "log_index": ref.log_index if ref else None,
            }
        )
        self._counts[status.value] += 1
        chain = (
            None
            if ref is None
            else {"tx_hash": ref.tx_hash, "block_number": ref.block_number, "log_index": ref.log_index}
        )
        change = {"from": previous, "to": status.value, "code": code, "reason": reason, "chain": chain}
        self._entries.append((actor, "transfer.status", f"transfer:{transfer.id}", change))
        self._deliveries += webhooks.deliveries(self.session, transfer, status, reason, code, chain, now=now)

    def write(self) -> None:
        session = self.session
        update_rows(session, Transfer, self._updates)
        insert_rows(session, TransferEvent, self._events)
        audit_log.append_many(session, self._entries)
        insert_rows(session, WebhookDelivery, self._deliveries)
        for status, count in self._counts.items():
            metrics.TRANSITIONS.labels(status).inc(count)
        self._updates, self._events, self._entries, self._deliveries = [], [], [], []
        self._counts.clear()


def transition(
    session: Session,
    transfer: Transfer,
    status: TransferStatus,
    reason: str,
    ref: OnChain | None = None,
    code: str = "",
    actor: str = "node",
) -> None:
    """One state change, written at once (see :class:`Transitions` for many)."""
    with Transitions(session) as changes:
        changes.add(transfer, status, reason, ref, code, actor)


def cancel(session: Session, principal: Principal, transfer_id: str) -> Transfer:
    transfer = get_visible(session, principal, transfer_id)
    if transfer.status != TransferStatus.RECEIVED.value:
        raise Conflict(
            f"transfer {transfer_id} is {transfer.status}: only a transfer that has not escrowed can be cancelled",
            code="not_cancellable",
        )
    transition(
        session,
        transfer,
        TransferStatus.REJECTED,
        "cancelled by the bank",
        code="cancelled",
        actor=f"bank:{principal.bic}",
    )
    return transfer


def get_visible(session: Session, principal: Principal, transfer_id: str) -> Transfer:
    """The transfer if the principal may see it; another bank's transfer is simply not found."""
    try:
        key = str(uuid.UUID(transfer_id))
    except ValueError:
        raise NotFound(f"no transfer {transfer_id}: transfer ids are UETRs (UUIDs)") from None
    transfer = session.get(Transfer, key)
    if transfer is None or (principal.role is Role.BANK and transfer.bank_id != principal.bank_id):
        raise NotFound(f"no transfer {key}")
    return transfer


def page(
    session: Session,
    principal: Principal,
    limit: int,
    cursor: str | None = None,
    status: TransferStatus | None = None,
    created_from: dt.datetime | None = None,
    created_to: dt.datetime | None = None,
) -> tuple[list[Transfer], str | None]:
    """Newest first, ``limit`` at a time; the cursor is the last row's (created_at, id)."""
    query = select(Transfer)
    if principal.role is Role.BANK:
        query = query.where(Transfer.bank_id == principal.bank_id)
    if status is not None:
        query = query.where(Transfer.status == status.value)
    if created_from is not None:
        query = query.where(Transfer.created_at >= created_from)
    if created_to is not None:
        query = query.where(Transfer.created_at < created_to)
    if cursor:
        at, last_id = _decode_cursor(cursor)
        query = query.where(or_(Transfer.created_at < at, and_(Transfer.created_at == at, Transfer.id < last_id)))
    rows = list(
        session.execute(query.order_by(Transfer.created_at.desc(), Transfer.id.desc()).limit(limit + 1)).scalars()
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, _encode_cursor(rows[-1]) if more and rows else None


def _encode_cursor(t: Transfer) -> str:
    return base64.urlsafe_b64encode(f"{t.created_at.isoformat()}|{t.id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    try:
        at, last_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return dt.datetime.fromisoformat(at), str(uuid.UUID(last_id))
    except Exception:
        raise Unprocessable("the cursor is not one this API gave out", code="bad_cursor") from None


def chain_head(session: Session) -> int | None:
    """The newest block the watcher has read (confirmations are counted from it)."""
    return session.scalar(select(func.max(SeenBlock.number)))


def public(transfer: Transfer, head: int | None = None) -> TransferPublic:
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
