"""The operator's actions: one home for the admin API and the console.

Each runs in the caller's write transaction, changes the store and appends to the audit log with
the operator as actor (``via`` says which door it came through), so that an action taken in the
console and one taken with the API are the same change, seen the same way by an auditor.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from node import transfers, transitions
from node.auth import Principal, Role
from node.errors import Refusal, Refused
from node.ops import audit_log
from node.store.models import Bank, NetworkState, Transfer
from settlement.lifecycle import ReasonCode, ReviewState
from settlement.lifecycle import TransferStatus as S

OPERATOR = "operator"
"""The actor the audit log names for the operator, by API key or console session."""


class Via(StrEnum):
    """The door an operator's action came through, kept in its audit entry."""

    API = "api"
    CONSOLE = "console"


def _detail(via: Via, reason: str = "") -> dict[str, str]:
    # The API's entries keep the shape they always had; the console's say where they came from and why.
    detail = {} if via is Via.API else {"via": via.value}
    return detail | ({"reason": reason} if reason else {})


def bank_by_bic(session: Session, bic: str) -> Bank:
    bank = session.execute(select(Bank).where(Bank.bic == bic)).scalar_one_or_none()
    if bank is None:
        raise Refused(Refusal.NOT_FOUND, f"no bank {bic}")
    return bank


def set_frozen(session: Session, bic: str, frozen: bool, via: Via = Via.API, reason: str = "") -> Bank:
    """Freeze or unfreeze a bank off chain at once; the worker then sends the vault's ``setFrozen``."""
    bank = bank_by_bic(session, bic)
    bank.frozen = frozen
    action = "bank.frozen" if frozen else "bank.unfrozen"
    audit_log.append(session, OPERATOR, action, f"bank:{bic}", _detail(via, reason))
    return bank


def set_paused(session: Session, paused: bool, via: Via = Via.API, reason: str = "") -> NetworkState:
    """Pause or resume the network off chain at once; the worker then sends the vault's ``setPaused``."""
    state = session.get(NetworkState, 1)
    assert state is not None, "the initial migration creates the row"
    state.paused, state.updated_at = paused, dt.datetime.now(dt.UTC)
    action = "network.paused" if paused else "network.resumed"
    audit_log.append(session, OPERATOR, action, "network", _detail(via, reason))
    return state


def decide_review(session: Session, transfer_id: str, decision: ReviewState, note: str, via: Via = Via.API) -> Transfer:
    """Approve (it settles) or reject (refunded if escrowed, else REJECTED) a transfer held for review."""
    t = transfers.get_visible(session, Principal(Role.OPERATOR), transfer_id)
    t = transitions.lock_for_update(session, [t.id])[t.id]
    if t.review != ReviewState.PENDING:
        raise Refused(
            Refusal.NOT_IN_REVIEW, f"transfer {t.id} is not waiting for review (review: {t.review or 'never held'})"
        )
    now = dt.datetime.now(dt.UTC)
    t.review, t.reviewed_at = decision, now
    why = f"review {decision} by the operator" + (f": {note}" if note else "")
    t.review_reason = f"{t.review_reason}; {why}"
    data = {"note": note, "status": t.status} | _detail(via)
    audit_log.append(session, OPERATOR, f"review.{decision}", f"transfer:{t.id}", data)
    if decision is ReviewState.REJECTED and t.status == S.RECEIVED.value and t.batch_id is None:
        transitions.transition(session, t, S.REJECTED, why, code=ReasonCode.REVIEW_REJECTED, actor=OPERATOR)
    else:
        t.status_reason, t.status_code, t.updated_at = why, f"review_{decision}", now
    return t
