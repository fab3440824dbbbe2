"""Escrow: RECEIVED transfers risk-checked; those that pass are QUEUED for a net settlement
cycle (see :mod:`node.pipeline.net`), or, when held for review or when the node settles gross,
fitted to the debtors' available balances and escrowed in batches (a batch the vault would
refuse in part is simulated again without the positions it names)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from node.ops import audit_log
from node.ops.rules import Exposures, facts_of
from node.pipeline.base import ACTOR, S, Stage, chunks, log, paused, signed_instruction
from node.pipeline.refusals import Hold, culprits
from node.store.db import update_rows
from node.store.models import Bank, EscrowBatch, Transfer
from node.transitions import Transitions, lock_columns, lock_for_update
from settlement.chain.vault import (
    Balance,
    escrow_batch_calldata,
)
from settlement.errors import SlotOccupied
from settlement.lifecycle import ReasonCode, ReviewState, TxKind
from settlement.risk import Decision, Outcome


@dataclass
class _Plan:
    """One batch being put together: positions, and what the vault refused of it."""

    transfers: list[Transfer]
    rejected: dict[str, tuple[str, str]] = field(default_factory=dict)
    """transfer id -> (code, reason): out of the batch and REJECTED."""


@dataclass
class _Screened:
    """A round's transfers after the risk checks."""

    balance: Callable[[str, str], Balance]
    ready: list[Transfer] = field(default_factory=list)
    rejected: dict[str, tuple[str, str]] = field(default_factory=dict)
    """transfer id -> (code, reason): REJECTED without reaching the chain."""
    held: dict[str, Decision] = field(default_factory=dict)
    """Escrowed, but settled only once the operator approves."""
    queued: list[Transfer] = field(default_factory=list)
    """Passed, and wait for a net settlement cycle."""
    large_new: set[str] = field(default_factory=set)


class EscrowStage(Stage):
    def escrow(self) -> int:
        """Risk-check RECEIVED transfers and escrow those that pass, in batches; returns how many were sent."""
        found = self._pending()
        if found is None:
            return 0
        pending, banks, in_flight, open_slots = found
        screened = self._screen(pending, banks, self._balances())
        gross = screened.ready
        if self.settings.net:
            # A transfer decided before (a gross batch that failed) goes gross again.
            screened.queued = [t for t in gross if t.id not in screened.held and t.review is None]
            gross = [t for t in gross if t.id in screened.held or t.review is not None]
        ready = self._fit_funds(gross, in_flight, screened.rejected, screened.balance)
        # Net, a hold is escrowed alone, so that it can join a cycle once approved.
        size = 1 if self.settings.net else self.settings.batch_size_max
        plans = self._plan(ready, open_slots, screened.rejected, size)
        if not screened.rejected and not plans and not screened.queued:
            return 0
        self._commit(screened, plans)
        return sum(len(p.transfers) for _, p, _, _ in plans) + len(screened.queued)

    def _pending(self) -> tuple[list[Transfer], dict[int, Bank], dict[tuple[str, str], int], set[int]] | None:
        """RECEIVED transfers not yet in a batch (oldest first, a round's worth), the banks, the
        amounts in flight and the open slots; None when there is nothing to do or the network is paused."""
        settings = self.settings
        with self.store.transaction(write=False) as session:
            if paused(session):
                return None
            pending = list(
                session.scalars(
                    select(Transfer)
                    .where(Transfer.status == S.RECEIVED.value, Transfer.batch_id.is_(None))
                    .order_by(Transfer.created_at, Transfer.id)
                    .limit(settings.batch_size_max * settings.batches_per_tick_max)
                )
            )
            if not pending:
                return None
            banks = {b.id: b for b in session.scalars(select(Bank))}
            in_flight = self._in_flight(session)
            open_slots = set(session.scalars(select(EscrowBatch.slot).where(EscrowBatch.open.is_(True))))
        return pending, banks, in_flight, open_slots

    def _balances(self) -> Callable[[str, str], Balance]:
        """The vault's balance of a (participant, currency), read once per round."""
        balances: dict[tuple[str, str], Balance] = {}

        def balance(participant: str, ccy: str) -> Balance:
            if (participant, ccy) not in balances:
                balances[(participant, ccy)] = self.vault.balance(participant, ccy)
            return balances[(participant, ccy)]

        return balance

    def _screen(
        self, pending: list[Transfer], banks: dict[int, Bank], balance: Callable[[str, str], Balance]
    ) -> _Screened:
        """The risk engine's decision on each transfer not decided before; past deadlines and frozen
        banks rejected first."""
        now_s = int(self.clock())
        out = _Screened(balance)
        by_address = {b.address.lower(): b for b in banks.values()}
        with self.store.transaction(write=False) as session:
            engine = self.risk.current(session)
            exposures = Exposures(
                session, engine.rules, pending, dt.datetime.now(dt.UTC), lambda who, ccy: balance(who, ccy).total
            )
        for t in pending:
            if t.deadline <= now_s + self.settings.settle_margin_s:
                out.rejected[t.id] = (
                    ReasonCode.DEADLINE_PASSED,
                    f"its deadline {t.deadline} passed before it could be escrowed",
                )
                continue
            debtor, creditor = banks[t.bank_id], by_address.get(t.creditor.lower())
            if t.review == ReviewState.REJECTED:
                out.rejected[t.id] = (ReasonCode.REVIEW_REJECTED, t.review_reason)
                continue
            if t.review is not None:
                out.ready.append(t)  # decided before (a batch that failed and came back): not checked again
                continue
            if debtor.frozen or (creditor is not None and creditor.frozen):
                who = debtor if debtor.frozen else creditor
                assert who is not None
                out.rejected[t.id] = (
                    ReasonCode.BANK_FROZEN,
                    f"{who.bic} was frozen by the operator before it escrowed",
                )
                continue
            decision = engine.check(facts_of(t, debtor, creditor), exposures.of(t, debtor))
            if decision.outcome is Outcome.REJECT:
                out.rejected[t.id] = (decision.code, decision.reason)
                continue
            if decision.outcome is Outcome.REVIEW:
                out.held[t.id] = decision
            if decision.large_new_beneficiary:
                out.large_new.add(t.id)
            exposures.count(t, decision.large_new_beneficiary)
            out.ready.append(t)
        return out

    def _plan(
        self, ready: list[Transfer], open_slots: set[int], rejected: dict[str, tuple[str, str]], size: int
    ) -> list[tuple[int, _Plan, bytes, int]]:
        """Batches of ``ready`` the vault would take, each in a free slot, simulated; what it refuses
        goes to ``rejected``."""
        plans: list[tuple[int, _Plan, bytes, int]] = []
        for chunk in chunks(ready, size):
            slot = self._free_slot(open_slots)
            try:
                plan, data, gas, slot = self._simulate_escrow(_Plan(chunk), slot, open_slots)
            except Hold as hold:
                log.info("escrow held: %s", hold)
                break
            rejected.update(plan.rejected)
            if plan.transfers:
                open_slots.add(slot)
                plans.append((slot, plan, data, gas))
        return plans

    def _commit(self, screened: _Screened, plans: list[tuple[int, _Plan, bytes, int]]) -> None:
        """Reject what was refused and sign each batch's escrow in one store transaction, then broadcast."""
        fees = self.sender.fees() if plans else {}
        sent: list[int] = []
        try:
            with self.store.transaction() as session:
                self._reject(session, screened.rejected)
                self._enqueue(session, screened.queued, screened.large_new)
                for slot, plan, data, gas in plans:
                    tx_id = self._sign_batch(session, slot, plan, data, gas, fees, screened)
                    if tx_id is not None:
                        sent.append(tx_id)
        except BaseException:
            self.sender.forget_nonce()
            raise
        for tx_id in sent:
            self.sender.broadcast(tx_id)

    def _sign_batch(
        self,
        session: Session,
        slot: int,
        plan: _Plan,
        data: bytes,
        gas: int,
        fees: dict[str, int],
        screened: _Screened,
    ) -> int | None:
        """Sign one batch's escrow and put its transfers in it; None when one of them changed meanwhile."""
        ids = [t.id for t in plan.transfers]
        rows = lock_columns(session, ids, Transfer.status, Transfer.batch_id)
        if len(rows) < len(ids) or any(r.status != S.RECEIVED.value or r.batch_id is not None for r in rows.values()):
            return None  # cancelled meanwhile: rebuilt next tick
        tx = self.sender.prepare(
            session, TxKind.ESCROW, self.vault.manifest.vault, data, gas, {"slot": slot, "transfer_ids": ids}, fees
        )
        session.flush()
        batch = EscrowBatch(slot=slot, escrow_tx_id=tx.id, transfer_ids=ids, open=True)
        session.add(batch)
        session.flush()
        held, large_new = screened.held, screened.large_new
        update_rows(
            session,
            Transfer,
            [
                {
                    "id": tid,
                    "batch_id": batch.id,
                    "position": position,
                    "large_new": tid in large_new,
                    **(self._hold(session, tid, held[tid]) if tid in held else {}),
                }
                for position, tid in enumerate(ids)
            ],
        )
        return tx.id

    def _in_flight(self, session: Session) -> dict[tuple[str, str], int]:
        """Sell amounts in escrow transactions the watcher has not yet seen, per (debtor, currency)."""
        rows = session.execute(
            select(Transfer.debtor, Transfer.sell_currency, Transfer.sell_amount).where(
                Transfer.status == S.RECEIVED.value, Transfer.batch_id.is_not(None)
            )
        )
        out: dict[tuple[str, str], int] = defaultdict(int)
        for debtor, ccy, amount in rows:
            out[(debtor, ccy)] += amount
        return out

    @staticmethod
    def _hold(session: Session, tid: str, decision: Decision) -> dict[str, str]:
        """Escrow it, but settle it only once the operator approves (``/v1/admin/reviews``): the
        columns that say so, and the audit entry."""
        audit_log.append(
            session,
            "node:risk",
            "transfer.held_for_review",
            f"transfer:{tid}",
            {"code": decision.code, "reason": decision.reason},
        )
        return {
            "review": ReviewState.PENDING,
            "review_code": decision.code,
            "review_reason": decision.reason,
            "status_reason": decision.reason,
            "status_code": decision.code,
        }

    def _fit_funds(
        self,
        ready: list[Transfer],
        in_flight: dict[tuple[str, str], int],
        rejected: dict[str, tuple[str, str]],
        balance: Callable[[str, str], Balance],
    ) -> list[Transfer]:
        """Keep what the debtors' available balances cover, in arrival order.

        One that does not fit is rejected (``insufficient_funds``) unless escrows of the same
        debtor and currency are in flight: the chain's balance may already count them, so it
        waits a tick rather than be refused on a figure counted twice.
        """
        keys = {(t.debtor, t.sell_currency) for t in ready}
        left = {k: balance(k[0], k[1]).available - in_flight.get(k, 0) for k in keys}
        fits: list[Transfer] = []
        for t in ready:
            key = (t.debtor, t.sell_currency)
            if t.sell_amount <= left[key]:
                left[key] -= t.sell_amount
                fits.append(t)
            elif in_flight.get(key, 0) == 0:
                rejected[t.id] = (
                    ReasonCode.INSUFFICIENT_FUNDS,
                    f"{t.debtor} has {max(left[key], 0)} {t.sell_currency} (minor units) available, "
                    f"not {t.sell_amount}",
                )
        return fits

    def _free_slot(self, taken: set[int]) -> int:
        for slot in range(self.settings.slots_max):
            if slot not in taken and slot not in self._busy_slots:
                return slot
        raise Hold(f"all {self.settings.slots_max} escrow slots are in use")

    def _simulate_escrow(self, plan: _Plan, slot: int, taken: set[int]) -> tuple[_Plan, bytes, int, int]:
        for _ in range(self.settings.simulations_max):
            if not plan.transfers:
                return plan, b"", 0, slot
            signed = [signed_instruction(t) for t in plan.transfers]
            data = escrow_batch_calldata(slot, signed)
            error = self._estimate(data)
            if isinstance(error, int):
                return plan, data, error, slot
            if isinstance(error, SlotOccupied):
                self._busy_slots.add(slot)
                slot = self._free_slot(taken | {slot})
                continue
            named = culprits(plan.transfers, error)
            if not named:
                raise Hold(str(error))
            for t in named:
                plan.rejected[t.id] = (error.error_name, f"the vault refused it: {error}")
            plan.transfers = [t for t in plan.transfers if t.id not in plan.rejected]
        raise Hold(f"batch still refused after {self.settings.simulations_max} runs")

    @staticmethod
    def _enqueue(session: Session, queued: list[Transfer], large_new: set[str]) -> None:
        """RECEIVED -> QUEUED: passed the risk checks, waits for a net cycle that can fund it."""
        if not queued:
            return
        with Transitions(session) as changes:
            for tid, row in lock_for_update(session, [t.id for t in queued]).items():
                if row.status == S.RECEIVED.value and row.batch_id is None:
                    row.large_new = tid in large_new
                    reason = "queued for the next net settlement cycle that can fund it"
                    changes.add(row, S.QUEUED, reason, code=ReasonCode.QUEUED, actor=ACTOR)

    def _reject(self, session: Session, rejected: dict[str, tuple[str, str]]) -> None:
        if not rejected:
            return
        with Transitions(session) as changes:
            for tid, row in lock_for_update(session, list(rejected)).items():
                if row.status == S.RECEIVED.value and row.batch_id is None:
                    code, reason = rejected[tid]
                    changes.add(row, S.REJECTED, reason, code=code, actor=ACTOR)
