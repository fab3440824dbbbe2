"""Resolve: escrowed transfers settled at a signed quote, or refunded after their deadline (or
early, by the operator's key, when the review rejected them), one transaction per batch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fx.quotes import LockedQuote, QuoteEngine
from node import metrics
from node.chain.sender import LIVE, TxSender
from node.intake import instruction_of
from node.pipeline.base import RESOLVED_EVENTS, S, Stage, log, paused
from node.pipeline.refusals import Hold, keep_for
from node.store.db import update_rows
from node.store.models import ChainEvent, ChainTx, EscrowBatch, Quote, Transfer
from node.transitions import lock_columns, lock_for_update
from settlement.chain.vault import (
    Action,
    SignedQuote,
    resolve_batch_calldata,
)
from settlement.lifecycle import ReviewState, TxKind


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


class ResolveStage(Stage):
    def resolve(self) -> int:
        """Settle escrowed transfers at a signed quote, refund expired ones; returns positions acted on."""
        now_s = int(self.clock())
        with self.store.transaction(write=False) as session:
            held = session.scalar(
                select(func.count()).select_from(Transfer).where(Transfer.review == ReviewState.PENDING)
            )
            metrics.REVIEWS_PENDING.set(held or 0)
            if paused(session):
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
        decided = self._actions(transfers, done, locked, now_s, engine)
        if decided is None:
            return None  # the watcher has not applied this batch's escrow yet
        actions, quote_of, waiting, sender = decided
        for _ in range(self.settings.simulations_max):
            acting = [tid for tid, a in actions.items() if a in (Action.SETTLE, Action.REFUND)]
            if not acting:
                self._note_waiting(waiting)
                return None
            data = _calldata(self.sender.address, batch.slot, transfers, actions, quote_of)
            try:
                error = self._estimate(data, sender)
            except Hold as hold:
                log.warning("resolve of batch %s held: %s", batch.id, hold)
                return None
            if isinstance(error, int):
                return self._plan_resolve(batch, transfers, actions, quote_of, data, error, sender)
            keep = keep_for(transfers, actions, quote_of, error)
            if not keep:
                log.warning("resolve of batch %s held: %s", batch.id, error)
                return None
            for tid in keep:
                actions[tid] = Action.KEEP
                waiting[tid] = f"waiting: the vault would refuse it now: {error}"
        simulations = self.settings.simulations_max
        log.warning("resolve of batch %s held: still refused after %s simulations", batch.id, simulations)
        self._note_waiting(waiting)
        return None

    def _actions(
        self,
        transfers: list[Transfer],
        done: set[str],
        locked: dict[str, dict[str, Any]],
        now_s: int,
        engine: QuoteEngine,
    ) -> tuple[dict[str, Action], dict[str, LockedQuote], dict[str, str], TxSender] | None:
        """Each position's action, the quotes to settle at, why the others wait, and whose key
        sends the batch; None when a position is not escrowed yet."""
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
                return None
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
            elif settings.net and len(transfers) == 1:
                actions[t.id] = Action.KEEP  # approved, escrowed alone: it joins a net cycle
            else:
                quote, why = self._settle_quote(t, locked, now_s, engine)
                if quote is None:
                    actions[t.id], waiting[t.id] = Action.KEEP, why
                else:
                    actions[t.id], quote_of[t.id] = Action.SETTLE, quote
        return actions, quote_of, waiting, self._early_refunds(early, actions, waiting)

    def _early_refunds(self, early: set[str], actions: dict[str, Action], waiting: dict[str, str]) -> TxSender:
        """The sender of a batch with refunds before their deadline (the operator's), adjusting the actions."""
        if not early:
            return self.sender
        if self.operator is None:
            for tid in early:
                actions[tid] = Action.KEEP
                waiting[tid] = (
                    "rejected by the operator's review: refunded after its deadline (this node has no "
                    "operator key to refund it sooner)"
                )
            return self.sender
        # The vault lets only the escrower settle and only an operator refund early: one
        # transaction cannot do both, so the settlements of this batch wait for the next round.
        for tid, action in actions.items():
            if action is Action.SETTLE:
                actions[tid] = Action.KEEP
        return self.operator

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


def _calldata(
    escrower: str,
    slot: int,
    transfers: list[Transfer],
    actions: dict[str, Action],
    quote_of: dict[str, LockedQuote],
) -> bytes:
    """The resolve call of a batch: each position's action, and each quote once (named by index)."""
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
    return resolve_batch_calldata(escrower, slot, items, quotes)
