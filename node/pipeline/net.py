"""Net settlement: QUEUED transfers priced (the bank's locked quote while it is good, else a
fresh one that meets its minimum), the largest set the vault's balances fund net chosen by
gridlock resolution (:mod:`settlement.netting`), simulated and settled in one ``settleCycle``.
What is not funded waits in the queue with its shortfall (``insufficient_cover``); what outlives
its deadline there is rejected, never having reached the chain.

Several cycles may be in flight (a round signs up to ``batches_per_tick_max``): each is chosen
from the chain's balances less the net debits of the cycles signed before it and not yet mined,
whose credits it does not count. Those cycles come first in the relayer's nonce order, so what
each was chosen to spend is there when it runs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_utils.abi import function_signature_to_4byte_selector
from sqlalchemy import select
from sqlalchemy.orm import Session

from fx.quotes import LockedQuote
from node.intake import instruction_of
from node.pipeline.base import ACTOR, S, Stage, log, paused, signed_instruction
from node.pipeline.refusals import Hold
from node.store.db import update_rows
from node.store.models import Bank, ChainTx, EscrowBatch, Quote, Transfer
from node.transitions import Transitions, lock_columns, lock_for_update
from settlement.chain._abi import encode
from settlement.chain.vault import CycleEntry, EscrowedEntry, SignedQuote, settle_cycle_calldata
from settlement.conversion import convert
from settlement.eip712 import uetr_of
from settlement.errors import ContractError, InstructionNonceUsed, InsufficientAvailable
from settlement.lifecycle import ReasonCode, ReviewState, TxKind, TxStatus
from settlement.netting import Account, Cycle, Payment, resolve

_ACCOUNT_OF = function_signature_to_4byte_selector("accountOf(address,bytes3)")
_PERMANENT = frozenset(
    {
        "InstructionNonceUsed",
        "InstructionSignerMismatch",
        "InstructionExpired",
        "InstructionAmountZero",
        "InstructionSameCurrency",
        "SignatureHighS",
        "SignatureInvalid",
    }
)
"""Refusals of an instruction that no later round can cure: the transfer is rejected."""


@dataclass
class _Round:
    queued: list[Transfer]
    banks: dict[int, Bank]
    locked: dict[str, dict[str, Any]]
    spending: dict[Account, int]
    """Net debits of the cycles signed and not yet mined, per account."""
    slots: dict[str, int] = field(default_factory=dict)
    """Approved review holds escrowed alone, which join a cycle: transfer id -> their slot."""
    rejected: dict[str, tuple[str, str]] = field(default_factory=dict)
    waiting: dict[str, tuple[str, str]] = field(default_factory=dict)
    """transfer id -> (code, reason): stays QUEUED, the reason says why."""


@dataclass(frozen=True, slots=True)
class _Plan:
    """One cycle to sign: its transfers, their quotes, the calldata, gas, and its net debits."""

    chosen: list[Transfer]
    quote_of: dict[str, LockedQuote]
    data: bytes
    gas: int
    debits: dict[Account, int]


class NetStage(Stage):
    def net(self) -> int:
        """Settle what the queue's net positions allow, in up to ``batches_per_tick_max`` cycles; returns
        how many transfers were sent."""
        now_s = int(self.clock())
        found = self._queue()
        if found is None:
            return 0
        engine = self.quotes.frozen()
        priced: list[tuple[Transfer, LockedQuote]] = []
        for t in found.queued:
            why = self._unsettleable(t, found.banks, now_s)
            if why is not None and t.id in found.slots:
                continue  # escrowed: refunded after its deadline by the resolve stage, not rejected here
            if why is not None:
                found.rejected[t.id] = why
                continue
            quote, reason = self._settle_quote(t, found.locked, now_s, engine)
            if quote is None:
                found.waiting[t.id] = (ReasonCode.QUEUED, reason)
            else:
                priced.append((t, quote))
        plans: list[_Plan] = []
        if priced:
            quote_of = {t.id: q for t, q in priced}
            by_id = {t.id: t for t, _ in priced}
            payments = [self._payment(t, q, t.id in found.slots) for t, q in priced]
            cover = self._cover({a for p in payments for a, _ in p.legs()}, found.spending)
            for _ in range(self.settings.batches_per_tick_max):
                plan = self._choose(payments, cover, found, by_id, quote_of)
                if plan is None:
                    break
                plans.append(plan)
                taken = {t.id for t in plan.chosen}
                payments = [p for p in payments if p.key not in taken]
                for account, debit in plan.debits.items():
                    cover[account] -= debit
        self._commit_cycles(found, plans)
        return sum(len(p.chosen) for p in plans)

    def _cover(self, accounts: set[Account], spending: dict[Account, int]) -> dict[Account, int]:
        """Each account's available balance at the chain's head (one batch of calls), less what the
        cycles in flight will spend of it."""
        ordered = sorted(accounts)
        vault = self.vault.manifest.vault
        calls = [(vault, _ACCOUNT_OF + encode(["address", "bytes3"], [who, ccy.encode()])) for who, ccy in ordered]
        rpc = self.sender.rpc
        answers = rpc.eth_calls(calls, rpc.block_number())
        return {
            account: int.from_bytes(answer[:32], "big") - spending.get(account, 0)
            for account, answer in zip(ordered, answers, strict=True)
        }

    def _queue(self) -> _Round | None:
        """The queue (oldest first, bounded) when no cycle is in flight and the network runs."""
        with self.store.transaction(write=False) as session:
            if paused(session):
                return None
            queued = list(
                session.scalars(
                    select(Transfer)
                    .where(Transfer.status == S.QUEUED.value, Transfer.resolve_tx_id.is_(None))
                    .order_by(Transfer.created_at, Transfer.id)
                    .limit(self.settings.queue_scan_max)
                )
            )
            slots = self._approved_holds(session)
            if slots:
                queued += session.scalars(select(Transfer).where(Transfer.id.in_(list(slots))))
            if not queued:
                return None
            banks = {b.id: b for b in session.scalars(select(Bank))}
            quote_ids = [t.quote_id for t in queued if t.quote_id]
            locked = {q.id: q.body for q in session.scalars(select(Quote).where(Quote.id.in_(quote_ids)))}
            spending: dict[Account, int] = defaultdict(int)
            unmined = (TxStatus.SIGNED.value, TxStatus.SENT.value)
            in_flight = select(ChainTx.payload).where(ChainTx.kind == TxKind.CYCLE.value, ChainTx.status.in_(unmined))
            for payload in session.scalars(in_flight):
                for key, debit in (payload or {}).get("debits", {}).items():
                    who, ccy = key.split("/")
                    spending[(who, ccy)] += int(debit)
        return _Round(queued, banks, locked, dict(spending), slots)

    def _approved_holds(self, session: Session) -> dict[str, int]:
        """Transfers the operator approved after a review hold, escrowed alone in a slot and not
        being settled: they join the next cycle (their escrow pays their sell leg)."""
        rows = session.execute(
            select(Transfer.id, EscrowBatch.slot, EscrowBatch.transfer_ids)
            .join(EscrowBatch, EscrowBatch.id == Transfer.batch_id)
            .where(
                Transfer.status == S.ESCROWED.value,
                Transfer.review == ReviewState.APPROVED,
                Transfer.resolve_tx_id.is_(None),
                EscrowBatch.open.is_(True),
            )
            .limit(self.settings.batch_size_max)
        )
        return {tid: slot for tid, slot, ids in rows if len(ids) == 1}

    def _unsettleable(self, t: Transfer, banks: dict[int, Bank], now_s: int) -> tuple[str, str] | None:
        """Why a queued transfer must be rejected now, or None."""
        if t.deadline <= now_s + self.settings.settle_margin_s:
            return ReasonCode.DEADLINE_PASSED, f"its deadline {t.deadline} passed while it waited for cover"
        debtor = banks[t.bank_id]
        creditor = next((b for b in banks.values() if b.address.lower() == t.creditor.lower()), None)
        for bank in (debtor, creditor):
            if bank is not None and bank.frozen:
                return ReasonCode.BANK_FROZEN, f"{bank.bic} was frozen by the operator while it was queued"
        return None

    def _choose(
        self,
        payments: list[Payment],
        balances: dict[Account, int],
        found: _Round,
        by_id: dict[str, Transfer],
        quote_of: dict[str, LockedQuote],
    ) -> _Plan | None:
        """The next cycle to send from ``payments`` and the cover ``balances`` leave, simulated; or None."""
        for _ in range(self.settings.simulations_max):
            cycle = resolve(
                payments, balances, size_max=self.settings.batch_size_max, rounds_max=self.settings.cycle_rounds_max
            )
            self._note_shortfalls(cycle, found)
            if not cycle.settled:
                return None
            chosen = [by_id[p.key] for p in cycle.settled]
            data = _calldata(chosen, quote_of, found.slots)
            try:
                outcome = self._estimate(data)
            except Hold as hold:
                log.warning("net cycle held: %s", hold)
                return None
            if isinstance(outcome, int):
                for t in chosen:
                    found.waiting.pop(t.id, None)
                debits = {account: -movement for account, movement in cycle.net.items() if movement < 0}
                return _Plan(chosen, quote_of, data, outcome, debits)
            left = self._after_refusal(outcome, payments, balances, found, by_id)
            if left is None:
                log.warning("net cycle held: %s", outcome)
                return None
            payments = left
        log.warning("net cycle held: still refused after %s simulations", self.settings.simulations_max)
        return None

    def _payment(self, t: Transfer, q: LockedQuote, from_escrow: bool) -> Payment:
        assets = self.vault.manifest.assets
        figures = convert(
            t.sell_amount, q.rate, q.fee_bps, assets[t.sell_currency].decimals, assets[t.buy_currency].decimals
        )
        return Payment(
            t.id,
            t.debtor,
            t.creditor,
            t.sell_currency,
            t.sell_amount,
            t.buy_currency,
            figures.buy_amount,
            figures.fee,
            q.liquidity_provider,
            from_escrow,
        )

    def _after_refusal(
        self,
        error: ContractError,
        payments: list[Payment],
        balances: dict[Account, int],
        found: _Round,
        by_id: dict[str, Transfer],
    ) -> list[Payment] | None:
        """The candidates for the next simulation after the vault refused one, or None to hold."""
        f = error.fields
        if isinstance(error, InsufficientAvailable):
            # The balance moved since it was read (a withdrawal, another transaction): read it again.
            account = (str(f["participant"]), bytes(f["currency"]).decode())
            fresh = self._cover({account}, found.spending)[account]
            if fresh >= balances.get(account, 0):
                return None  # not a stale figure: something else is wrong
            balances[account] = fresh
            return payments
        named = _named(error, payments, by_id)
        if not named:
            return None
        for p in named:
            if error.error_name in _PERMANENT:
                found.rejected[p.key] = (error.error_name, f"the vault refused it: {error}")
            else:
                found.waiting[p.key] = (error.error_name, f"waiting: the vault would refuse it now: {error}")
        keys = {p.key for p in named}
        return [p for p in payments if p.key not in keys]

    def _note_shortfalls(self, cycle: Cycle, found: _Round) -> None:
        bics = {b.address.lower(): b.bic for b in found.banks.values()}
        for key, short in cycle.deferred.items():
            who = bics.get(short.participant.lower(), short.participant)
            found.waiting[key] = (
                ReasonCode.INSUFFICIENT_COVER,
                f"waiting for cover: {who} has {short.available} {short.currency} (minor units) available net of "
                f"this cycle, needs {short.needed}: {short.missing} short",
            )

    def _commit_cycles(self, found: _Round, plans: list[_Plan]) -> None:
        """Reject, note why the rest waits and sign the cycles in one store transaction, then broadcast."""
        fees = self.sender.fees() if plans else {}
        sent: list[int] = []
        try:
            with self.store.transaction() as session:
                self._reject_queued(session, found.rejected)
                self._note_queued(session, found.waiting)
                for plan in plans:
                    tx_id = self._sign_cycle(session, plan, fees)
                    if tx_id is None:
                        break  # the later cycles counted on this one's debits: chosen again next round
                    sent.append(tx_id)
        except BaseException:
            self.sender.forget_nonce()
            raise
        for tx_id in sent:
            self.sender.broadcast(tx_id)

    def _sign_cycle(self, session: Session, plan: _Plan, fees: dict[str, int]) -> int | None:
        chosen, quote_of, data, gas = plan.chosen, plan.quote_of, plan.data, plan.gas
        ids = [t.id for t in chosen]
        rows = lock_columns(session, ids, Transfer.status, Transfer.resolve_tx_id)
        waiting = (S.QUEUED.value, S.ESCROWED.value)
        moved = any(r.status not in waiting or r.resolve_tx_id is not None for r in rows.values())
        if len(rows) < len(ids) or moved:
            return None  # cancelled or changed meanwhile: chosen again next round
        quotes = {
            "0x" + q.quote_hash.hex(): {"pair": f"{q.sell_currency}/{q.buy_currency}", "rate": str(q.rate)}
            for q in (quote_of[tid] for tid in ids)
        }
        debits = {f"{who}/{ccy}": amount for (who, ccy), amount in plan.debits.items()}
        payload = {"transfer_ids": ids, "quotes": quotes, "debits": debits}
        tx = self.sender.prepare(session, TxKind.CYCLE, self.vault.manifest.vault, data, gas, payload, fees)
        session.flush()
        update_rows(session, Transfer, [{"id": tid, "resolve_tx_id": tx.id, "rate": quote_of[tid].rate} for tid in ids])
        return tx.id

    @staticmethod
    def _reject_queued(session: Session, rejected: dict[str, tuple[str, str]]) -> None:
        if not rejected:
            return
        with Transitions(session) as changes:
            for tid, row in lock_for_update(session, list(rejected)).items():
                if row.status == S.QUEUED.value and row.resolve_tx_id is None:
                    code, reason = rejected[tid]
                    changes.add(row, S.REJECTED, reason, code=code, actor=ACTOR)

    @staticmethod
    def _note_queued(session: Session, waiting: dict[str, tuple[str, str]]) -> None:
        """Why a queued transfer waits, on the transfer (no history entry: its status did not change)."""
        if not waiting:
            return
        for tid, row in lock_for_update(session, list(waiting)).items():
            code, reason = waiting[tid]
            if row.status == S.QUEUED.value and (row.status_code, row.status_reason) != (code, reason):
                row.status_code, row.status_reason = code, reason


def _named(error: ContractError, payments: Sequence[Payment], by_id: dict[str, Transfer]) -> list[Payment]:
    """The candidates a refusal names: by instruction id, or by the debtor's nonce."""
    f = error.fields
    if isinstance(error, InstructionNonceUsed):
        return [p for p in payments if (p.debtor, by_id[p.key].nonce) == (f["debtor"], f["nonce"])]
    if "id" in f and isinstance(f["id"], bytes):
        return [p for p in payments if p.key == uetr_of(f["id"])]
    if "instructionId" in f and isinstance(f["instructionId"], bytes):
        return [p for p in payments if p.key == uetr_of(f["instructionId"])]
    return []


def _calldata(chosen: list[Transfer], quote_of: dict[str, LockedQuote], slots: dict[str, int]) -> bytes:
    """``settleCycle`` of the chosen transfers (those escrowed alone by their slot), each quote once."""
    quotes: list[SignedQuote] = []
    index: dict[bytes, int] = {}
    entries: list[CycleEntry] = []
    escrowed: list[EscrowedEntry] = []
    for t in chosen:
        q = quote_of[t.id]
        if q.quote_hash not in index:
            assert q.signature is not None
            index[q.quote_hash] = len(quotes)
            quotes.append(SignedQuote(q.onchain(), q.signature))
        if t.id in slots:
            escrowed.append(EscrowedEntry(slots[t.id], instruction_of(t).terms(), index[q.quote_hash]))
        else:
            entries.append(CycleEntry(signed_instruction(t), index[q.quote_hash]))
    return settle_cycle_calldata(entries, quotes, escrowed)
