"""A transfer's state changes, written together: the status, its history entry, the audit log
entry and the webhook deliveries in one write (:class:`Transitions`), and the row locks that
come before it."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.engine import Row
from sqlalchemy.orm import InstrumentedAttribute, Session, load_only
from sqlalchemy.orm.attributes import set_committed_value

from node import metrics
from node.notify import webhooks
from node.ops import audit_log
from node.store.db import insert_rows, update_rows
from node.store.models import Transfer, TransferEvent, WebhookDelivery
from settlement.lifecycle import ReasonCode, TransferStatus, check_transition

LOCK_CHUNK = 500
"""Ids per ``SELECT ... FOR UPDATE`` (SQLite binds at most 32,766 parameters per statement)."""


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
    thousands of transfers a round and needs none of their details or signatures.
    """
    rows: dict[str, Transfer] = {}
    options = [load_only(*only, raiseload=True)] if only else []
    for start in range(0, len(ids), LOCK_CHUNK):
        query = select(Transfer).options(*options).where(Transfer.id.in_(ids[start : start + LOCK_CHUNK]))
        query = query.with_for_update()
        for row in session.scalars(query):
            rows[row.id] = row
    return rows


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
    deliveries; :meth:`write` runs those with one statement per table, because the watcher moves
    hundreds of transfers per block and the ORM's unit of work would flush them one object at a
    time.
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
        code: ReasonCode | str = "",
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
    code: ReasonCode | str = "",
    actor: str = "node",
) -> None:
    """One state change, written at once (see :class:`Transitions` for many)."""
    with Transitions(session) as changes:
        changes.add(transfer, status, reason, ref, code, actor)
