"""Applying the vault's events to transfers: each event recorded once, the transfers it names
moved (ESCROWED, SETTLED), FINAL and REFUNDED once deep enough, and the steps back a
reorganisation calls for. The watcher (:mod:`node.chain.watcher`) reads and decodes the
events; nothing here reads the chain."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session, load_only

from node.chain.finality import Finality
from node.faults import failpoint
from node.pipeline.base import RESOLVED_EVENTS
from node.store.db import insert_rows
from node.store.models import ChainEvent, EscrowBatch, Transfer
from node.transitions import WATCHED, Transitions, lock_for_update, transition
from settlement.lifecycle import ReasonCode, ReviewState, TransferStatus

log = logging.getLogger("corridor.watcher")
S = TransferStatus
ACTOR = "node:watcher"


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    transfer_id: str
    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str
    data: dict[str, Any]


class _Ref(NamedTuple):
    tx_hash: str
    block_number: int
    log_index: int


def apply_events(session: Session, events: Sequence[Event], finality: Finality) -> None:
    """Record each event once and move this node's transfers it names (ESCROWED, SETTLED)."""
    if not events:
        return
    lo, hi = events[0].block_number, events[-1].block_number
    seen = {
        (tx_hash, log_index)
        for tx_hash, log_index in session.execute(
            select(ChainEvent.tx_hash, ChainEvent.log_index).where(ChainEvent.block_number.between(lo, hi))
        )
    }
    rows = lock_for_update(session, sorted({e.transfer_id for e in events}), WATCHED)
    closing: set[int] = set()
    recorded: list[dict[str, Any]] = []
    changes = Transitions(session)
    for e in events:
        if (e.tx_hash, e.log_index) in seen:
            continue
        seen.add((e.tx_hash, e.log_index))
        t = rows.get(e.transfer_id)
        recorded.append(
            {
                "name": e.name,
                "transfer_id": e.transfer_id if t else None,
                "tx_hash": e.tx_hash,
                "log_index": e.log_index,
                "block_number": e.block_number,
                "block_hash": e.block_hash,
                "data": {k: str(v) for k, v in e.data.items()},
            }
        )
        if t is None:
            continue  # not a transfer of this node (another relayer's, or a test's)
        _move(changes, t, e, finality.describe())
        if e.name in RESOLVED_EVENTS and t.batch_id is not None:
            closing.add(t.batch_id)
    insert_rows(session, ChainEvent, recorded)
    changes.write()
    session.flush()
    if any(e.transfer_id in rows for e in events):
        failpoint("before_watcher_commit")  # this node's transfers changed; the commit has not happened
    _close_batches(session, closing)


def _move(changes: Transitions, t: Transfer, e: Event, final_when: str) -> None:
    """The state change one event makes of this node's transfer (or a warning if it makes none)."""
    status = S(t.status)
    if e.name == "InstructionEscrowed" and status is S.RECEIVED:
        if t.review == ReviewState.PENDING:
            why = f"escrowed in block {e.block_number}; {t.review_reason}"
            changes.add(t, S.ESCROWED, why, e, code=t.review_code, actor=ACTOR)
        else:
            why = f"escrowed in block {e.block_number}"
            changes.add(t, S.ESCROWED, why, e, code=ReasonCode.ESCROWED, actor=ACTOR)
    elif e.name == "InstructionNetted" and status is S.QUEUED:
        why = f"settled by net cycle {e.data['cycle']} in block {e.block_number}: FINAL {final_when}"
        figures = {"buy_amount": int(e.data["buyAmount"]), "fee": int(e.data["fee"])}
        changes.add(t, S.SETTLED, why, e, code=ReasonCode.SETTLED, actor=ACTOR, values=figures)
    elif e.name == "InstructionSettled" and status is S.ESCROWED:
        why = f"settled in block {e.block_number}: FINAL {final_when}"
        figures = {"buy_amount": int(e.data["buyAmount"]), "fee": int(e.data["fee"])}
        changes.add(t, S.SETTLED, why, e, code=ReasonCode.SETTLED, actor=ACTOR, values=figures)
    elif e.name == "InstructionRefunded" and status is S.ESCROWED:
        t.status_reason = f"refunded in block {e.block_number}: REFUNDED {final_when}"
    else:
        log.warning("event %s for transfer %s in status %s: recorded, no change", e.name, t.id, t.status)


def _close_batches(session: Session, batch_ids: set[int]) -> None:
    """Close each batch whose every position is settled or refunded: its slot is free again."""
    for batch_id in batch_ids:
        batch = session.get(EscrowBatch, batch_id)
        if batch is None:
            continue
        resolved = session.scalars(
            select(ChainEvent.transfer_id).where(
                ChainEvent.transfer_id.in_(batch.transfer_ids), ChainEvent.name.in_(RESOLVED_EVENTS)
            )
        ).all()
        if len(set(resolved)) == len(batch.transfer_ids):
            batch.open = False


def finalize(session: Session, head: int, cutoff: int, finality: Finality) -> None:
    """FINAL (or REFUNDED) for what is in ``cutoff`` or before (``finality``'s newest final block at ``head``)."""
    for target, status, name in (
        (S.FINAL, S.SETTLED, "InstructionSettled"),
        (S.FINAL, S.SETTLED, "InstructionNetted"),
        (S.REFUNDED, S.ESCROWED, "InstructionRefunded"),
    ):
        # The event's columns, not the entity: its JSON data is not needed here.
        rows = session.execute(
            select(Transfer, ChainEvent.tx_hash, ChainEvent.block_number, ChainEvent.log_index)
            .options(load_only(*WATCHED, raiseload=True))
            .join(ChainEvent, ChainEvent.transfer_id == Transfer.id)
            .where(Transfer.status == status.value, ChainEvent.name == name, ChainEvent.block_number <= cutoff)
            .with_for_update(of=Transfer)
        ).all()
        with Transitions(session) as changes:
            for t, tx_hash, block_number, log_index in rows:
                ref = _Ref(tx_hash, block_number, log_index)
                what, code = ("settled", ReasonCode.FINAL) if target is S.FINAL else ("refunded", ReasonCode.REFUNDED)
                if target is S.REFUNDED and t.review == ReviewState.REJECTED:
                    what = f"rejected by the operator's review ({t.review_reason}); refunded"
                    code = ReasonCode.REVIEW_REJECTED
                changes.add(
                    t,
                    target,
                    f"{what} in block {block_number}, {finality.reason(block_number, head, cutoff)}",
                    ref,
                    code=code,
                    actor=ACTOR,
                )


def step_back(session: Session, t: Transfer, fork: int) -> None:
    """Take a transfer back to the state its remaining events support, after a reorganisation from ``fork``."""
    left = set(session.scalars(select(ChainEvent.name).where(ChainEvent.transfer_id == t.id)))
    if S(t.status).terminal:
        if t.status != S.REJECTED.value:
            log.critical("reorganisation at block %s undid events of %s transfer %s", fork, t.status, t.id)
        return
    settled = bool(left & {"InstructionSettled", "InstructionNetted"})
    if t.batch_id is None and S(t.status) in (S.QUEUED, S.SETTLED):
        # Netted: back to the queue, to be chosen for a cycle again.
        target, order = (S.SETTLED if settled else S.QUEUED), [S.QUEUED, S.SETTLED]
    else:
        target = S.SETTLED if settled else S.ESCROWED if "InstructionEscrowed" in left else S.RECEIVED
        order = [S.RECEIVED, S.ESCROWED, S.SETTLED]
    while order.index(S(t.status)) > order.index(target):
        back = order[order.index(S(t.status)) - 1]
        transition(
            session,
            t,
            back,
            f"a chain reorganisation from block {fork} undid it; it is being sent again",
            code=ReasonCode.REORG,
            actor=ACTOR,
        )
    if not settled:
        t.buy_amount = t.fee = None
    if not left & set(RESOLVED_EVENTS) and t.batch_id is not None:
        batch = session.get(EscrowBatch, t.batch_id)
        if batch is not None:
            batch.open = True
