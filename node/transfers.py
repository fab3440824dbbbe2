"""Reading transfers back (a bank sees only its own), and a bank's cancellation of one it sent."""

from __future__ import annotations

import base64
import datetime as dt
import uuid

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from node.auth import Principal, Role
from node.errors import Refusal, Refused
from node.store.models import SeenBlock, Transfer
from node.transitions import transition
from settlement.lifecycle import ReasonCode, TransferStatus


def cancel(session: Session, principal: Principal, transfer_id: str) -> Transfer:
    transfer = get_visible(session, principal, transfer_id)
    waiting = transfer.status == TransferStatus.RECEIVED.value or (
        transfer.status == TransferStatus.QUEUED.value and transfer.resolve_tx_id is None
    )
    if not waiting:
        raise Refused(
            Refusal.NOT_CANCELLABLE,
            f"transfer {transfer_id} is {transfer.status}: only a transfer that has not escrowed and is not in a "
            "settlement cycle being sent can be cancelled",
        )
    transition(
        session,
        transfer,
        TransferStatus.REJECTED,
        "cancelled by the bank",
        code=ReasonCode.CANCELLED,
        actor=f"bank:{principal.bic}",
    )
    return transfer


def get_visible(session: Session, principal: Principal, transfer_id: str) -> Transfer:
    """The transfer if the principal may see it; another bank's transfer is simply not found."""
    try:
        key = str(uuid.UUID(transfer_id))
    except ValueError:
        raise Refused(Refusal.NOT_FOUND, f"no transfer {transfer_id}: transfer ids are UETRs (UUIDs)") from None
    transfer = session.get(Transfer, key)
    if transfer is None or (principal.role is Role.BANK and transfer.bank_id != principal.bank_id):
        raise Refused(Refusal.NOT_FOUND, f"no transfer {key}")
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
        raise Refused(Refusal.BAD_CURSOR, "the cursor is not one this API gave out") from None


def chain_head(session: Session) -> int | None:
    """The newest block the watcher has read (confirmations are counted from it)."""
    return session.scalar(select(func.max(SeenBlock.number)))
