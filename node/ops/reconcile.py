"""Reconciliation: the store against the chain, every ``reconcile_interval_s`` and on demand.

One run reads the store's transfers and the watcher's checkpoint block B in one read
transaction, then replays the chain's logs up to B (:func:`settlement.audit.replay_chain`,
the auditor's own replay) and reads the contract's state at B. It compares:

- **chain_balance**: each participant's balance in the vault's storage against the balance
  rebuilt from the events (catches a balance changed without an event);
- **escrowed**: per debtor and currency, the sum of the store's ESCROWED transfers against
  the chain's open escrows of those transfers;
- **transfer**: each transfer's status and figures against its events: a settlement means
  SETTLED or FINAL with the same buy amount and fee, a refund ESCROWED (not yet deep
  enough) or REFUNDED, an open escrow ESCROWED, no escrow RECEIVED, REJECTED or FAILED;
  the escrowed debtor, currency and amount must be the store's.

A difference is recorded (``reconciliation_mismatches``), counted in ``/metrics``, listed by
``GET /v1/admin/reconciliation`` and sent to the operator's webhook when first seen. Nothing
is corrected: a mismatch stays open until a run no longer finds it, which closes it with the
time.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from node import metrics
from node.chain.finality import Finality
from node.ops import audit_log
from node.store.db import Store
from node.store.models import Mismatch, ReconciliationRun, SeenBlock, Transfer, WebhookDelivery
from settlement.audit import audit_checks, check_state, replay_chain
from settlement.audit.state import Ledger
from settlement.chain.rpc import Rpc
from settlement.eip712 import uuid_to_id
from settlement.lifecycle import TransferStatus
from settlement.manifest import Manifest

log = logging.getLogger("corridor.reconcile")
S = TransferStatus
FINDINGS_MAX = 1_000
"""Mismatches recorded per run; a store that disagrees with the chain everywhere is one alarm, not a million rows."""


@dataclass(frozen=True, slots=True)
class Difference:
    kind: str
    subject: str
    expected: str
    found: str
    detail: str

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.subject}"[:200]


@dataclass
class Outcome:
    run_id: int
    block: int
    checked: dict[str, int] = field(default_factory=dict)
    differences: list[Difference] = field(default_factory=list)
    opened: int = 0
    cleared: int = 0


@dataclass(frozen=True, slots=True)
class _Row:
    id: str
    status: str
    debtor: str
    sell_currency: str
    sell_amount: int
    buy_amount: int | None
    fee: int | None


def reconcile(store: Store, rpc_url: str, manifest: Manifest, finality: Finality, trigger: str) -> Outcome:
    """One run (see the module doc); its mismatches are recorded before it returns."""
    now = dt.datetime.now(dt.UTC)
    with store.transaction() as session:
        run = ReconciliationRun(trigger=trigger, started_at=now, checked={}, mismatches=0, error="")
        session.add(run)
        session.flush()
        run_id = run.id
    try:
        outcome = _compare(store, rpc_url, manifest, finality, run_id)
    except Exception as exc:
        with store.transaction() as session:
            row = session.get(ReconciliationRun, run_id)
            assert row is not None
            row.finished_at, row.error = dt.datetime.now(dt.UTC), f"{type(exc).__name__}: {exc}"[:2000]
        metrics.RECONCILIATION_RUNS.labels("error").inc()
        raise
    _record(store, outcome, trigger)
    metrics.RECONCILIATION_RUNS.labels("mismatch" if outcome.differences else "clean").inc()
    return outcome


def _compare(store: Store, rpc_url: str, manifest: Manifest, finality: Finality, run_id: int) -> Outcome:
    block, rows = _read_store(store)
    with Rpc(rpc_url) as rpc:
        if block is None:
            block = rpc.block_number()
        checks = audit_checks()
        ledger, _ = replay_chain(rpc, manifest, block, checks)
        check_state(rpc, manifest, ledger, block, checks)
        final_depth = finality.cutoff(rpc, block)
    out = Outcome(run_id, block)
    balances = checks["balances"]
    out.checked["balances"] = balances.checked
    for f in balances.findings:
        subject = f"{f.fields.get('participant', '')} {f.fields.get('currency', '')} {f.fields.get('field', '')}"
        why = f.message + " (events vs the vault's storage)"
        out.differences.append(
            Difference("chain_balance", subject.strip(), f.fields.get("expected", ""), f.fields.get("found", ""), why)
        )
    store_escrowed: dict[tuple[str, str], int] = defaultdict(int)
    chain_escrowed: dict[tuple[str, str], int] = defaultdict(int)
    for t in rows:
        key = uuid_to_id(t.id)
        escrows = ledger.escrows.get(key, [])
        if t.status == S.ESCROWED.value:
            store_escrowed[(t.debtor, t.sell_currency)] += t.sell_amount
        if escrows and ledger.settlements.get(key) is None and ledger.refunds.get(key) is None:
            chain_escrowed[(escrows[0].debtor, escrows[0].sell_currency)] += escrows[0].sell_amount
        out.differences += _transfer_differences(t, ledger, final_depth)
    for debtor, ccy in sorted(store_escrowed.keys() | chain_escrowed.keys()):
        expected, found = chain_escrowed.get((debtor, ccy), 0), store_escrowed.get((debtor, ccy), 0)
        if expected != found:
            where, what = f"{debtor} {ccy}", "the node's open escrows, summed"
            out.differences.append(Difference("escrowed", where, f"{expected} on chain", f"{found} in the store", what))
    out.checked["transfers"] = len(rows)
    out.checked["escrow_accounts"] = len(store_escrowed.keys() | chain_escrowed.keys())
    del out.differences[FINDINGS_MAX:]
    return out


def _read_store(store: Store) -> tuple[int | None, list[_Row]]:
    """The watcher's newest block, and every transfer's figures the chain can confirm."""
    with store.transaction(write=False) as session:
        block = session.scalar(select(func.max(SeenBlock.number)))
        columns = (
            Transfer.id,
            Transfer.status,
            Transfer.debtor,
            Transfer.sell_currency,
            Transfer.sell_amount,
            Transfer.buy_amount,
            Transfer.fee,
        )
        return block, [_Row(*r) for r in session.execute(select(*columns))]


def _transfer_differences(t: _Row, ledger: Ledger, final_depth: int) -> list[Difference]:
    """Where one transfer's status and figures disagree with what its events say."""
    key = uuid_to_id(t.id)
    escrows = ledger.escrows.get(key, [])
    settled, refunded = ledger.settlements.get(key), ledger.refunds.get(key)
    subject = f"transfer {t.id}"
    found: list[Difference] = []
    if settled is not None:
        allowed = {S.FINAL.value} if settled.block <= final_depth else {S.SETTLED.value, S.FINAL.value}
        chain = f"settled in block {settled.block} (tx {settled.tx_hash})"
        buy, fee = int(settled.args["buyAmount"]), int(settled.args["fee"])
        if t.status in (S.SETTLED.value, S.FINAL.value) and (t.buy_amount, t.fee) != (buy, fee):
            expected, stored = f"buy amount {buy}, fee {fee}", f"buy amount {t.buy_amount}, fee {t.fee}"
            found.append(Difference("transfer", subject, expected, stored, chain))
    elif refunded is not None:
        allowed = {S.REFUNDED.value} if refunded.block <= final_depth else {S.ESCROWED.value, S.REFUNDED.value}
        chain = f"refunded in block {refunded.block} (tx {refunded.tx_hash})"
    elif escrows:
        allowed, chain = {S.ESCROWED.value}, f"escrowed in block {escrows[0].log.block}, not yet settled"
    else:
        allowed = {S.RECEIVED.value, S.QUEUED.value, S.REJECTED.value, S.FAILED.value}
        chain = "neither escrowed nor settled on chain"
    if t.status not in allowed:
        found.append(Difference("transfer", subject, " or ".join(sorted(allowed)), t.status, chain))
    if escrows:
        e = escrows[0]
        if (e.debtor, e.sell_currency, e.sell_amount) != (t.debtor, t.sell_currency, t.sell_amount):
            expected = f"{e.sell_amount} {e.sell_currency} from {e.debtor}"
            stored = f"{t.sell_amount} {t.sell_currency} from {t.debtor}"
            found.append(Difference("transfer", subject + " escrow", expected, stored, "the escrow event's figures"))
    return found


def _record(store: Store, outcome: Outcome, trigger: str) -> None:
    now = dt.datetime.now(dt.UTC)
    found = {d.key: d for d in outcome.differences}
    with store.transaction() as session:
        open_rows = {m.key: m for m in session.scalars(select(Mismatch).where(Mismatch.cleared_at.is_(None)))}
        for key, d in found.items():
            row = open_rows.get(key)
            if row is None:
                session.add(
                    Mismatch(
                        key=key,
                        kind=d.kind,
                        subject=d.subject[:120],
                        expected=d.expected,
                        found=d.found,
                        detail=d.detail,
                        first_run_id=outcome.run_id,
                        last_run_id=outcome.run_id,
                        first_seen_at=now,
                        last_seen_at=now,
                    )
                )
                outcome.opened += 1
                _notify(session, d, outcome.run_id, now)
            else:
                row.last_run_id, row.last_seen_at, row.expected, row.found = outcome.run_id, now, d.expected, d.found
        for key, row in open_rows.items():
            if key not in found:
                row.cleared_at = now
                outcome.cleared += 1
        run = session.get(ReconciliationRun, outcome.run_id)
        assert run is not None
        run.finished_at, run.block, run.checked = now, outcome.block, dict(outcome.checked)
        run.mismatches = len(found)
        if trigger != "schedule" or outcome.opened or outcome.cleared:
            audit_log.append(
                session,
                f"node:reconcile ({trigger})",
                "reconciliation.run",
                f"reconciliation:{outcome.run_id}",
                {
                    "block": outcome.block,
                    "mismatches": len(found),
                    "opened": outcome.opened,
                    "cleared": outcome.cleared,
                },
            )
    metrics.RECONCILIATION_MISMATCHES.set(len(found))
    if outcome.opened:
        log.error(
            "reconciliation run %s: %s mismatches (%s new) at block %s",
            outcome.run_id,
            len(found),
            outcome.opened,
            outcome.block,
        )


def _notify(session: Session, d: Difference, run_id: int, now: dt.datetime) -> None:
    """Owe the operator's webhook a delivery (sent only when CORRIDOR_NODE_OPERATOR_WEBHOOK_URL is set)."""
    delivery_id = str(uuid.uuid4())
    body: dict[str, Any] = {
        "id": delivery_id,
        "type": "reconciliation.mismatch",
        "created_at": now.isoformat(),
        "data": {
            "run_id": run_id,
            "kind": d.kind,
            "subject": d.subject,
            "expected": d.expected,
            "found": d.found,
            "detail": d.detail,
        },
    }
    session.add(
        WebhookDelivery(
            id=delivery_id,
            bank_id=None,
            transfer_id=None,
            body=body,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            last_error="",
            created_at=now,
        )
    )


def open_mismatches(session: Session) -> list[Mismatch]:
    return list(session.scalars(select(Mismatch).where(Mismatch.cleared_at.is_(None)).order_by(Mismatch.id)))


def last_run(session: Session) -> ReconciliationRun | None:
    return session.scalars(select(ReconciliationRun).order_by(ReconciliationRun.id.desc()).limit(1)).first()
