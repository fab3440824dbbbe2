"""The pipeline: RECEIVED transfers are risk-checked and escrowed in batches; escrowed ones are
priced and settled (or, after their deadline, refunded) in batches.

Each stage reads from the store, talks to the chain outside any database transaction (so the
bank API is never held up by the node's RPC calls), then writes its decision and the signed
transaction in one short transaction, and only then broadcasts (see :mod:`node.chain.sender`).
Every batch is first run once on the chain's node (:meth:`Pipeline._estimate`), which also
gives its gas: a position the vault would refuse is named
by the vault's custom error (``InstructionNonceUsed``, ``BuyAmountBelowMinimum`` ...) and
taken out, so one bad instruction never sinks a batch. States that claim something happened
on chain are written by the watcher alone, from events.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from web3.exceptions import ContractCustomError, ContractLogicError

from fx.errors import FxError
from fx.quotes import LockedQuote, QuoteEngine
from node import metrics
from node.chain.sender import LIVE, TxSender
from node.intake import instruction_of, signature_of
from node.ops import audit_log
from node.ops.rules import Exposures, RulesInForce, facts_of
from node.store.db import Store, update_rows
from node.store.models import Bank, ChainEvent, ChainTx, EscrowBatch, NetworkState, Quote, Transfer
from node.transitions import Transitions, lock_columns, lock_for_update, transition
from settlement.chain import decode_revert
from settlement.chain.vault import (
    Action,
    Balance,
    SignedInstruction,
    SignedQuote,
    Vault,
    escrow_batch_calldata,
    resolve_batch_calldata,
)
from settlement.eip712 import uetr_of
from settlement.errors import ContractError
from settlement.lifecycle import ReasonCode, ReviewState, TransferStatus, TxKind
from settlement.risk import Decision, Outcome

log = logging.getLogger("corridor.pipeline")

VAULT_BATCH_SIZE_MAX = 256
RESOLVED_EVENTS = ("InstructionSettled", "InstructionRefunded")
S = TransferStatus
ACTOR = "node:pipeline"


@dataclass(frozen=True, slots=True)
class PipelineSettings:
    batch_size_max: int = 256
    """Instructions per escrow or resolve transaction (the vault takes at most 256)."""
    batches_per_tick_max: int = 8
    settle_margin_s: int = 10
    """Do not settle this close to the deadline (it could be mined after it); refund after it instead."""
    refund_margin_s: int = 2
    """Refund this long after the deadline (the chain's clock may lag the node's)."""
    quote_margin_s: int = 15
    """Settle at the bank's locked quote if it is good for this long yet; else at a fresh one."""
    slots_max: int = 4096
    simulations_max: int = 64
    """Re-runs of one batch after taking refused positions out."""

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size_max <= VAULT_BATCH_SIZE_MAX:
            raise ValueError(f"batch_size_max must be 1..{VAULT_BATCH_SIZE_MAX}")


@dataclass
class _Plan:
    """One batch being put together: positions, and what the vault refused of it."""

    transfers: list[Transfer]
    rejected: dict[str, tuple[str, str]] = field(default_factory=dict)
    """transfer id -> (code, reason): out of the batch and REJECTED."""


@dataclass(frozen=True, slots=True)
class _Resolve:
    """One batch's resolve transaction, simulated, to be signed with the round's others."""

    acting: list[str]
    rates: dict[str, int]
    """Settled transfer id -> the rate it settles at."""
    data: bytes
    gas: int
    payload: dict[str, Any]
    sender: TxSender


class Hold(Exception):
    """Nothing of this batch can go now (the vault is paused, or an error we cannot pin on a position)."""


class Pipeline:
    def __init__(
        self,
        store: Store,
        vault: Vault,
        sender: TxSender,
        quotes: QuoteEngine,
        risk: RulesInForce | None = None,
        settings: PipelineSettings | None = None,
        clock: Callable[[], float] = time.time,
        operator: TxSender | None = None,
    ) -> None:
        self.store = store
        self.vault = vault
        self.sender = sender
        self.quotes = quotes
        self.risk = risk or RulesInForce(store, vault.manifest.assets)
        self.operator = operator
        """The operator's sender: refunds a transfer the review rejected before its deadline (None: at the deadline)."""
        self.settings = settings or PipelineSettings()
        self.clock = clock
        self._busy_slots: set[int] = set()
        """Slots found occupied on chain that the store does not know of (a store restored from backup)."""
        self._resolve_cursor = 0
        """The last batch the previous resolve round looked at."""

    # ================================================================== escrow

    def escrow(self) -> int:
        """Risk-check RECEIVED transfers and escrow those that pass, in batches; returns how many were sent."""
        settings = self.settings
        now_s = int(self.clock())
        with self.store.transaction(write=False) as session:
            state = session.get(NetworkState, 1)
            if state is not None and state.paused:
                return 0
            pending = list(
                session.scalars(
                    select(Transfer)
                    .where(Transfer.status == S.RECEIVED.value, Transfer.batch_id.is_(None))
                    .order_by(Transfer.created_at, Transfer.id)
                    .limit(settings.batch_size_max * settings.batches_per_tick_max)
                )
            )
            if not pending:
                return 0
            banks = {b.id: b for b in session.scalars(select(Bank))}
            in_flight = self._in_flight(session)
            open_slots = set(session.scalars(select(EscrowBatch.slot).where(EscrowBatch.open.is_(True))))
        by_address = {b.address.lower(): b for b in banks.values()}
        rejected: dict[str, tuple[str, str]] = {}
        held: dict[str, Decision] = {}
        large_new: set[str] = set()
        ready: list[Transfer] = []
        balances: dict[tuple[str, str], Balance] = {}

        def balance(participant: str, ccy: str) -> Balance:
            if (participant, ccy) not in balances:
                balances[(participant, ccy)] = self.vault.balance(participant, ccy)
            return balances[(participant, ccy)]

        with self.store.transaction(write=False) as session:
            engine = self.risk.current(session)
            exposures = Exposures(
                session, engine.rules, pending, dt.datetime.now(dt.UTC), lambda who, ccy: balance(who, ccy).total
            )
        for t in pending:
            if t.deadline <= now_s + settings.settle_margin_s:
                rejected[t.id] = (
                    ReasonCode.DEADLINE_PASSED,
                    f"its deadline {t.deadline} passed before it could be escrowed",
                )
                continue
            debtor, creditor = banks[t.bank_id], by_address.get(t.creditor.lower())
            if t.review == ReviewState.REJECTED:
                rejected[t.id] = (ReasonCode.REVIEW_REJECTED, t.review_reason)
                continue
            if t.review is not None:
                ready.append(t)  # decided before (a batch that failed and came back): not checked again
                continue
            if debtor.frozen or (creditor is not None and creditor.frozen):
                who = debtor if debtor.frozen else creditor
                assert who is not None
                rejected[t.id] = (ReasonCode.BANK_FROZEN, f"{who.bic} was frozen by the operator before it escrowed")
                continue
            decision = engine.check(facts_of(t, debtor, creditor), exposures.of(t, debtor))
            if decision.outcome is Outcome.REJECT:
                rejected[t.id] = (decision.code, decision.reason)
                continue
            if decision.outcome is Outcome.REVIEW:
                held[t.id] = decision
            if decision.large_new_beneficiary:
                large_new.add(t.id)
            exposures.count(t, decision.large_new_beneficiary)
            ready.append(t)
        ready = self._fit_funds(ready, in_flight, rejected, balance)
        plans: list[tuple[int, _Plan, bytes, int]] = []
        for chunk in _chunks(ready, settings.batch_size_max):
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
        if not rejected and not plans:
            return 0
        fees = self.sender.fees() if plans else {}
        sent: list[int] = []
        try:
            with self.store.transaction() as session:
                self._reject(session, rejected)
                for slot, plan, data, gas in plans:
                    ids = [t.id for t in plan.transfers]
                    rows = lock_columns(session, ids, Transfer.status, Transfer.batch_id)
                    if len(rows) < len(ids) or any(
                        r.status != S.RECEIVED.value or r.batch_id is not None for r in rows.values()
                    ):
                        continue  # cancelled meanwhile: rebuilt next tick
                    tx = self.sender.prepare(
                        session,
                        TxKind.ESCROW,
                        self.vault.manifest.vault,
                        data,
                        gas,
                        {"slot": slot, "transfer_ids": ids},
                        fees,
                    )
                    session.flush()
                    batch = EscrowBatch(slot=slot, escrow_tx_id=tx.id, transfer_ids=ids, open=True)
                    session.add(batch)
                    session.flush()
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
                    sent.append(tx.id)
        except BaseException:
            self.sender.forget_nonce()
            raise
        for tx_id in sent:
            self.sender.broadcast(tx_id)
        return sum(len(p.transfers) for _, p, _, _ in plans)

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
            signed = [_signed(t) for t in plan.transfers]
            data = escrow_batch_calldata(slot, signed)
            error = self._estimate(data)
            if isinstance(error, int):
                return plan, data, error, slot
            name = error.error_name
            if name == "SlotOccupied":
                self._busy_slots.add(slot)
                slot = self._free_slot(taken | {slot})
                continue
            culprits = self._culprits(plan.transfers, error)
            if not culprits:
                raise Hold(str(error))
            for t in culprits:
                plan.rejected[t.id] = (name, f"the vault refused it: {error}")
            plan.transfers = [t for t in plan.transfers if t.id not in plan.rejected]
        raise Hold(f"batch still refused after {self.settings.simulations_max} runs")

    def _culprits(self, transfers: list[Transfer], error: ContractError) -> list[Transfer]:
        f, name = error.fields, error.error_name
        if "id" in f and isinstance(f["id"], bytes):
            uetr = uetr_of(f["id"])
            return [t for t in transfers if t.id == uetr]
        if name == "InstructionNonceUsed":
            return [t for t in transfers if t.debtor == f["debtor"] and t.nonce == f["nonce"]]
        if name in ("ParticipantNotUsable", "InsufficientAvailable"):
            ccy = bytes(f["currency"]).decode()
            matching = [t for t in transfers if t.debtor == f["participant"] and t.sell_currency == ccy]
            return matching if name == "ParticipantNotUsable" else matching[-1:]
        return []

    def _estimate(self, data: bytes, sender: TxSender | None = None) -> int | ContractError:
        """Gas for the call with a margin, or the vault's custom error it would revert with.

        ``eth_createAccessList`` runs the call once and reports the gas it used, where
        ``eth_estimateGas`` searches for the lowest limit that succeeds: on anvil that ran a
        256-instruction batch about twenty times and was the pipeline's slowest step. The margin
        (a third, plus 50,000) covers the refunds (at most a fifth of the gas spent) and the cold
        accesses the access list would have paid ahead. A node that does not serve the method,
        or reports a revert without its data, gets the estimate, which carries the revert data.
        """
        call = {"from": (sender or self.sender).address, "to": self.vault.manifest.vault, "data": "0x" + data.hex()}
        answer = self.vault.w3.provider.make_request("eth_createAccessList", [call, "latest"])  # type: ignore[arg-type]
        result, error = answer.get("result"), dict(answer.get("error") or {})
        if isinstance(result, dict) and "gasUsed" in result and not result.get("error"):
            return int(result["gasUsed"], 16) * 4 // 3 + 50_000
        raw = error.get("data")
        if isinstance(raw, str) and raw.startswith("0x") and len(raw) >= 10:
            return _refusal(raw, error.get("message", raw))
        try:
            gas = int(self.vault.w3.eth.estimate_gas(call))  # type: ignore[arg-type]
        except (ContractCustomError, ContractLogicError) as exc:
            return _refusal(getattr(exc, "data", None), exc)
        return gas * 4 // 3 + 50_000

    def _reject(self, session: Session, rejected: dict[str, tuple[str, str]]) -> None:
        if not rejected:
            return
        with Transitions(session) as changes:
            for tid, row in lock_for_update(session, list(rejected)).items():
                if row.status == S.RECEIVED.value and row.batch_id is None:
                    code, reason = rejected[tid]
                    changes.add(row, S.REJECTED, reason, code=code, actor=ACTOR)

    # ================================================================== settle / refund

    def resolve(self) -> int:
        """Settle escrowed transfers at a signed quote, refund expired ones; returns positions acted on."""
        now_s = int(self.clock())
        with self.store.transaction(write=False) as session:
            held = session.scalar(
                select(func.count()).select_from(Transfer).where(Transfer.review == ReviewState.PENDING)
            )
            metrics.REVIEWS_PENDING.set(held or 0)
            state = session.get(NetworkState, 1)
            if state is not None and state.paused:
                return 0
            batch_ids = self._resolvable_batches(session)
            work: list[tuple[EscrowBatch, list[Transfer], set[str], dict[str, dict[str, Any]]]] = []
            for batch_id in batch_ids:
                batch = session.get(EscrowBatch, batch_id)
                assert batch is not None
                rows = {t.id: t for t in session.scalars(select(Transfer).where(Transfer.batch_id == batch_id))}
                transfers = [rows[tid] for tid in batch.transfer_ids]
                done = {
                    tid
                    for tid in session.scalars(
                        select(ChainEvent.transfer_id).where(
                            ChainEvent.transfer_id.in_(batch.transfer_ids), ChainEvent.name.in_(RESOLVED_EVENTS)
                        )
                    )
                    if tid is not None
                }
                quote_ids = [t.quote_id for t in transfers if t.quote_id]
                locked = {q.id: q.body for q in session.scalars(select(Quote).where(Quote.id.in_(quote_ids)))}
                work.append((batch, transfers, done, locked))
        engine = self.quotes.frozen()  # one rate per pair for the whole round
        plans = [
            self._resolve_batch(batch, transfers, done, locked, now_s, engine)
            for batch, transfers, done, locked in work
        ]
        return self._send_resolves([p for p in plans if p is not None])

    def _resolvable_batches(self, session: Session) -> list[int]:
        """Open batches with a position to act on and no resolve transaction of theirs in flight."""
        waiting = select(Transfer.batch_id).where(
            Transfer.status == S.ESCROWED.value, Transfer.resolve_tx_id.is_(None), Transfer.batch_id.is_not(None)
        )
        busy = (
            select(Transfer.batch_id)
            .join(ChainTx, ChainTx.id == Transfer.resolve_tx_id)
            .where(Transfer.status == S.ESCROWED.value, ChainTx.status.in_(LIVE))
        )
        # In turn from where the last round stopped: batches that cannot act yet (held for review,
        # waiting for a rate) must not take every place of a round and keep the others waiting.
        candidates = waiting.except_(busy).subquery()
        limit = self.settings.batches_per_tick_max * 4
        after = select(candidates.c.batch_id).order_by(candidates.c.batch_id).limit(limit)
        ids = list(session.scalars(after.where(candidates.c.batch_id > self._resolve_cursor)))
        if len(ids) < limit:
            again = after.where(candidates.c.batch_id <= self._resolve_cursor).limit(limit - len(ids))
            ids += session.scalars(again)
        self._resolve_cursor = ids[-1] if ids else 0
        return ids

    def _resolve_batch(
        self,
        batch: EscrowBatch,
        transfers: list[Transfer],
        done: set[str],
        locked: dict[str, dict[str, Any]],
        now_s: int,
        engine: QuoteEngine,
    ) -> _Resolve | None:
        """What to send for one batch (settlements and refunds due, simulated), or None."""
        settings = self.settings
        actions: dict[str, Action] = {}
        quote_of: dict[str, LockedQuote] = {}
        waiting: dict[str, str] = {}
        early: set[str] = set()
        """Refunds before the deadline (rejected by review): only the operator's key may send those."""
        for t in transfers:
            if t.id in done:
                actions[t.id] = Action.RESOLVED
            elif t.status != S.ESCROWED.value:
                return None  # the watcher has not applied this batch's escrow yet
            elif t.resolve_tx_id is not None:
                actions[t.id] = Action.KEEP
            elif now_s > t.deadline + settings.refund_margin_s:
                actions[t.id] = Action.REFUND
            elif t.review == ReviewState.REJECTED:
                actions[t.id] = Action.REFUND
                early.add(t.id)
            elif t.review == ReviewState.PENDING:
                actions[t.id], waiting[t.id] = Action.KEEP, t.review_reason
            elif now_s >= t.deadline - settings.settle_margin_s:
                actions[t.id] = Action.KEEP
            else:
                quote, why = self._settle_quote(t, locked, now_s, engine)
                if quote is None:
                    actions[t.id], waiting[t.id] = Action.KEEP, why
                else:
                    actions[t.id], quote_of[t.id] = Action.SETTLE, quote
        sender = self.sender
        if early:
            if self.operator is None:
                for tid in early:
                    actions[tid] = Action.KEEP
                    waiting[tid] = (
                        "rejected by the operator's review: refunded after its deadline (this node has no "
                        "operator key to refund it sooner)"
                    )
            else:
                # The vault lets only the escrower settle and only an operator refund early: one
                # transaction cannot do both, so the settlements of this batch wait for the next round.
                sender = self.operator
                for tid, action in actions.items():
                    if action is Action.SETTLE:
                        actions[tid] = Action.KEEP
        for _ in range(settings.simulations_max):
            acting = [tid for tid, a in actions.items() if a in (Action.SETTLE, Action.REFUND)]
            if not acting:
                self._note_waiting(waiting)
                return None
            quotes: list[SignedQuote] = []
            index: dict[bytes, int] = {}
            items = []
            for t in transfers:
                action, qi = actions[t.id], 0
                if action is Action.SETTLE:
                    q = quote_of[t.id]
                    if q.quote_hash not in index:
                        assert q.signature is not None
                        index[q.quote_hash] = len(quotes)
                        quotes.append(SignedQuote(q.onchain(), q.signature))
                    qi = index[q.quote_hash]
                items.append((instruction_of(t).terms(), action, qi))
            data = resolve_batch_calldata(self.sender.address, batch.slot, items, quotes)
            try:
                error = self._estimate(data, sender)
            except Hold as hold:
                log.warning("resolve of batch %s held: %s", batch.id, hold)
                return None
            if isinstance(error, int):
                return self._plan_resolve(batch, transfers, actions, quote_of, data, error, sender)
            keep = self._keep_for(transfers, actions, quote_of, error)
            if not keep:
                log.warning("resolve of batch %s held: %s", batch.id, error)
                return None
            for tid in keep:
                actions[tid] = Action.KEEP
                waiting[tid] = f"waiting: the vault would refuse it now: {error}"
        log.warning("resolve of batch %s held: still refused after %s simulations", batch.id, settings.simulations_max)
        self._note_waiting(waiting)
        return None

    def _settle_quote(
        self, t: Transfer, locked: dict[str, dict[str, Any]], now_s: int, engine: QuoteEngine
    ) -> tuple[LockedQuote | None, str]:
        if t.quote_id and t.quote_id in locked:
            quote = LockedQuote.from_dict(locked[t.quote_id])
            if quote.signature is not None and quote.expiry >= now_s + self.settings.quote_margin_s:
                return quote, ""
        try:
            quote = engine.quote_sell(t.sell_currency, t.sell_amount, t.buy_currency)
        except FxError as exc:
            return None, f"waiting for a rate: {exc}"
        if quote.buy_amount < t.min_buy_amount:
            return None, (
                f"waiting: at today's rate it buys {quote.buy_amount} {t.buy_currency}, below the bank's minimum "
                f"of {t.min_buy_amount}; refunded at the deadline if the rate does not come back"
            )
        return quote, ""

    def _keep_for(
        self, transfers: list[Transfer], actions: dict[str, Action], quotes: dict[str, LockedQuote], err: ContractError
    ) -> list[str]:
        f = err.fields
        acting = [t for t in transfers if actions[t.id] in (Action.SETTLE, Action.REFUND)]
        if "id" in f and isinstance(f["id"], bytes):
            uetr = uetr_of(f["id"])
            return [t.id for t in acting if t.id == uetr]
        if "instructionId" in f:
            uetr = uetr_of(f["instructionId"])
            return [t.id for t in acting if t.id == uetr]
        if "quoteHash" in f:
            return [t.id for t in acting if t.id in quotes and quotes[t.id].quote_hash == f["quoteHash"]]
        if "sellCurrency" in f and "buyCurrency" in f:
            pair = (bytes(f["sellCurrency"]).decode(), bytes(f["buyCurrency"]).decode())
            return [
                t.id for t in acting if actions[t.id] is Action.SETTLE and (t.sell_currency, t.buy_currency) == pair
            ]
        if "participant" in f:
            return [
                t.id
                for t in acting
                if f["participant"] in (t.debtor, t.creditor)
                or (t.id in quotes and quotes[t.id].liquidity_provider == f["participant"])
            ]
        return []

    def _plan_resolve(
        self,
        batch: EscrowBatch,
        transfers: list[Transfer],
        actions: dict[str, Action],
        quote_of: dict[str, LockedQuote],
        data: bytes,
        gas: int,
        sender: TxSender,
    ) -> _Resolve:
        acting = [t.id for t in transfers if actions[t.id] in (Action.SETTLE, Action.REFUND)]
        # Each quote once (a round prices a pair at one rate); an item names its quote by hash.
        quotes: dict[str, dict[str, Any]] = {}
        items: list[list[str]] = []
        for t in transfers:
            item = [t.id, actions[t.id].name.lower()]
            if actions[t.id] is Action.SETTLE:
                q = quote_of[t.id]
                item.append(key := "0x" + q.quote_hash.hex())
                if key not in quotes:
                    quotes[key] = {
                        "pair": f"{q.sell_currency}/{q.buy_currency}",
                        "rate": str(q.rate),
                        "fee_bps": q.fee_bps,
                        "liquidity_provider": q.liquidity_provider,
                        "expiry": q.expiry,
                        "source": q.source,
                    }
            items.append(item)
        payload = {"batch_id": batch.id, "slot": batch.slot, "items": items, "quotes": quotes}
        rates = {tid: quote_of[tid].rate for tid in acting if actions[tid] is Action.SETTLE}
        return _Resolve(acting, rates, data, gas, payload, sender)

    def _send_resolves(self, plans: list[_Resolve]) -> int:
        """Sign the round's resolve transactions in one store transaction, then broadcast them."""
        if not plans:
            return 0
        senders = {id(p.sender): p.sender for p in plans}
        fees = {key: sender.fees() for key, sender in senders.items()}
        sent: list[tuple[TxSender, int]] = []
        acted = 0
        try:
            with self.store.transaction() as session:
                for plan in plans:
                    rows = lock_columns(session, plan.acting, Transfer.status, Transfer.resolve_tx_id)
                    if any(r.status != S.ESCROWED.value or r.resolve_tx_id is not None for r in rows.values()):
                        continue  # changed meanwhile: planned again next round
                    tx = plan.sender.prepare(
                        session,
                        TxKind.RESOLVE,
                        self.vault.manifest.vault,
                        plan.data,
                        plan.gas,
                        plan.payload,
                        fees[id(plan.sender)],
                    )
                    session.flush()
                    update_rows(
                        session,
                        Transfer,
                        [
                            {
                                "id": tid,
                                "resolve_tx_id": tx.id,
                                **({"rate": plan.rates[tid]} if tid in plan.rates else {}),
                            }
                            for tid in plan.acting
                        ],
                    )
                    sent.append((plan.sender, tx.id))
                    acted += len(plan.acting)
        except BaseException:
            for sender in senders.values():
                sender.forget_nonce()
            raise
        for sender, tx_id in sent:
            sender.broadcast(tx_id)
        return acted

    def _note_waiting(self, waiting: dict[str, str]) -> None:
        """Say in the transfer's reason why it is not settling (no history entry: the status did not change)."""
        if not waiting:
            return
        with self.store.transaction() as session:
            for tid, row in lock_for_update(session, list(waiting)).items():
                if row.status == S.ESCROWED.value and row.status_reason != waiting[tid]:
                    row.status_reason = waiting[tid]

    # ================================================================== transactions that ended badly

    def release(self, ended: Iterable[ChainTx]) -> None:
        """Give the transfers of a failed or dropped transaction back to their stage.

        A transfer the vault's revert names is rejected; the others go round again (and
        the simulation finds anything else wrong before a second transaction is signed).
        """
        ended = list(ended)
        if not ended:
            return
        with self.store.transaction() as session:
            for tx in ended:
                named = _named_in(tx.error)
                if tx.kind == TxKind.ESCROW:
                    batch = session.scalar(select(EscrowBatch).where(EscrowBatch.escrow_tx_id == tx.id))
                    if batch is None:
                        continue
                    escrowed = session.scalar(
                        select(func.count())
                        .select_from(ChainEvent)
                        .where(ChainEvent.transfer_id.in_(batch.transfer_ids), ChainEvent.name == "InstructionEscrowed")
                    )
                    if escrowed:
                        continue  # its events say it did escrow: keep everything as it is
                    batch.open = False
                    for tid, row in lock_for_update(session, batch.transfer_ids).items():
                        if row.status != S.RECEIVED.value:
                            continue
                        row.batch_id, row.position = None, None
                        if tid in named:
                            transition(
                                session,
                                row,
                                S.REJECTED,
                                f"the vault refused it: {tx.error}",
                                code=ReasonCode.ESCROW_FAILED,
                                actor=ACTOR,
                            )
                elif tx.kind == TxKind.RESOLVE:
                    for row in session.scalars(select(Transfer).where(Transfer.resolve_tx_id == tx.id)):
                        if row.status == S.ESCROWED.value:
                            row.resolve_tx_id = None
                            row.status_reason = f"settlement transaction {tx.tx_hash} {tx.status}: {tx.error}"
                log.warning("%s tx %s %s: %s", tx.kind, tx.tx_hash, tx.status, tx.error)


_T = TypeVar("_T")


def _chunks(items: list[_T], size: int) -> Iterable[list[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _refusal(raw: object, what: object) -> ContractError:
    """The vault's custom error in revert data; anything else holds the batch."""
    decoded = decode_revert(raw) if isinstance(raw, str | bytes) and raw else None
    if decoded is None:
        raise Hold(f"the vault refused the batch with an unknown error: {what}")
    return decoded


def _signed(t: Transfer) -> SignedInstruction:
    return SignedInstruction(instruction_of(t), signature_of(t))


def _named_in(error: str) -> set[str]:
    """UETRs a decoded revert message names (its ``id=0x...`` field)."""
    found = set()
    for part in error.replace("(", " ").replace(",", " ").replace(")", " ").split():
        if part.startswith(("id=0x", "instructionId=0x")):
            found.add(uetr_of(bytes.fromhex(part.split("=0x", 1)[1])))
    return found
