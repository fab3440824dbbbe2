"""The auditor's replay of net settlement cycles: each netted instruction re-verified from the
calldata (the debtor's signature, the quote, the conversion) and booked gross, and each cycle's
event checked against its instructions: the count, and per currency the gross moved and the net
debits booked, summed per account exactly as the vault sums them."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from settlement.audit.decoding import NettedCall, VaultCall
from settlement.audit.pricing import PricingChecks
from settlement.audit.report import Check
from settlement.audit.state import BANK, FEES_ACCRUED_MAX, LIQUIDITY_PROVIDER, Fail, uetr_text
from settlement.chain.events import Log
from settlement.conversion import BPS
from settlement.eip712 import recover


@dataclass
class CycleTally:
    """What one transaction's cycle moved according to its instruction events."""

    count: int = 0
    numbers: set[int] = field(default_factory=set)
    gross: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    legs: dict[tuple[str, str, int], int] = field(default_factory=lambda: defaultdict(int))
    """(participant, currency, kind) → net movement of its available balance."""

    def add(
        self, debtor: str | None, sell: str, creditor: str, buy: str, lp: str, amounts: tuple[int, int, int]
    ) -> None:
        """One instruction's legs; ``debtor`` is None for one that paid from its escrow."""
        sell_amount, buy_amount, fee = amounts
        self.count += 1
        self.gross[sell] += sell_amount
        self.gross[buy] += buy_amount
        if debtor is not None:
            self.legs[(debtor, sell, BANK)] -= sell_amount
        self.legs[(creditor, buy, BANK)] += buy_amount
        self.legs[(lp, sell, LIQUIDITY_PROVIDER)] += sell_amount - fee
        self.legs[(lp, buy, LIQUIDITY_PROVIDER)] -= buy_amount

    def net(self) -> dict[str, int]:
        """Per currency, the net debits booked: what the cycle's accounts paid beyond what they received."""
        debits: dict[str, int] = defaultdict(int)
        for (_, currency, _), movement in self.legs.items():
            if movement < 0:
                debits[currency] -= movement
        return debits


class CycleChecks(PricingChecks):
    """Mixed into :class:`settlement.audit.ledger.Replay`."""

    calls: dict[str, VaultCall | None]
    timestamps: dict[int, int]
    paused: bool
    fee_account: str
    settlements: Check
    authorisation: Check
    uniqueness: Check
    cycles: Check
    last_cycle: int
    _tallies: dict[str, CycleTally]
    _netted_in_tx: dict[str, int]

    def _move(self, log: Log, participant: str, currency: str, kind: str, available: int, escrowed: int) -> None:
        raise NotImplementedError

    def _failer(self, check: Check, uetr: str, log: Log) -> Fail:
        raise NotImplementedError

    def _book_provider_and_fee(self, log: Log, lp: str, pair: tuple[str, str], amounts: tuple[int, int, int]) -> None:
        """The liquidity provider's two legs and the fee of one settled instruction."""
        (sell, buy), (sell_amount, buy_amount, fee) = pair, amounts
        self._move(log, lp, sell, "settlement (liquidity provider in)", sell_amount - fee, 0)
        if fee:
            if self.ledger.fees_accrued[pair] + fee <= FEES_ACCRUED_MAX:
                self.ledger.fees_accrued[pair] += fee
            else:
                self._move(log, self.fee_account, sell, "fee", fee, 0)
        self._move(log, lp, buy, "settlement (liquidity provider out)", -buy_amount, 0)

    def _on_InstructionNetted(self, log: Log) -> None:  # noqa: N802 - named after the event
        a = log.args
        ident, sell, buy = a["id"], a["sellCurrency"], a["buyCurrency"]
        amounts = (a["sellAmount"], a["buyAmount"], a["fee"])
        self.settlements.checked += 1
        first = self.ledger.settlements.get(ident) or self.ledger.refunds.get(ident)
        escrowed = self.ledger.escrows.get(ident)
        if first is not None or escrowed:
            earlier = first.tx_hash if first is not None else escrowed[0].log.tx_hash  # type: ignore[index]
            self.uniqueness.fail(
                "id netted after it was escrowed or settled", uetr=uetr_text(ident), tx=log.tx_hash, first_tx=earlier
            )
        self.ledger.settlements.setdefault(ident, log)
        self.ledger.netted += 1
        self._move(log, a["debtor"], sell, "cycle (sell leg)", -a["sellAmount"], 0)
        self._book_provider_and_fee(log, a["liquidityProvider"], (sell, buy), amounts)
        self._move(log, a["creditor"], buy, "cycle (buy leg)", a["buyAmount"], 0)
        tally = self._tallies.setdefault(log.tx_hash, CycleTally())
        tally.add(a["debtor"], sell, a["creditor"], buy, a["liquidityProvider"], amounts)
        tally.numbers.add(a["cycle"])
        position = self._netted_position(log)
        if position is not None:
            self._check_netted(log, position)

    def _tally_joined(self, log: Log, sell: str, sell_amount: int) -> None:
        """An escrowed instruction settled inside a cycle: its escrow paid its sell leg."""
        call = self.calls.get(log.tx_hash)
        if call is None or call.function != "settleCycle":
            return
        a = log.args
        tally = self._tallies.setdefault(log.tx_hash, CycleTally())
        amounts = (sell_amount, a["buyAmount"], a["fee"])
        tally.add(None, sell, a["creditor"], a["buyCurrency"], a["liquidityProvider"], amounts)

    def _netted_position(self, log: Log) -> NettedCall | None:
        item: NettedCall | None = self._call_item(
            log,
            self._netted_in_tx,
            "netted",
            self.authorisation,
            "netted instruction's transaction is not a vault settleCycle call: signature and quote cannot be checked",
        )
        return item

    def _call_item(self, log: Log, seen: dict[str, int], field: str, check: Check, missing: str) -> Any:
        """The position behind ``log`` in its transaction's decoded call: the next of ``field``
        (events come in the order of the call's positions); None, with ``missing`` recorded, if the
        call is not one the auditor can decode or has no such position."""
        call = self.calls.get(log.tx_hash)
        k = seen[log.tx_hash]
        seen[log.tx_hash] += 1
        items = getattr(call, field) if call is not None else ()
        if k >= len(items):
            check.fail(missing, uetr=uetr_text(log.args["id"]), tx=log.tx_hash)
            return None
        return items[k]

    def _check_netted(self, log: Log, position: NettedCall) -> None:
        a, ins = log.args, position.signed.instruction
        now = self.timestamps[log.block]
        self.authorisation.checked += 1
        authority = self._failer(self.authorisation, uetr_text(a["id"]), log)
        try:
            signer = recover(self.domain, ins, position.signed.signature)
        except ValueError as exc:
            signer = f"invalid signature ({exc})"
        if signer != ins.debtor:
            authority("instruction not signed by its debtor", debtor=ins.debtor, signer=signer)
        fail = self._failer(self.settlements, uetr_text(a["id"]), log)
        booked = (a["id"], a["debtor"], a["creditor"], a["sellCurrency"], a["sellAmount"], a["buyCurrency"])
        sell, buy = ins.sell_currency.decode(), ins.buy_currency.decode()
        signed = (ins.id, ins.debtor, ins.creditor, sell, ins.sell_amount, buy)
        if booked != signed:
            fail("event differs from the signed instruction", event=str(booked), calldata=str(signed))
        if now > ins.deadline:
            fail("netted after its deadline", deadline=ins.deadline, block_time=now)
        if self.paused:
            fail("netted while the network was paused")
        for party, currency in ((ins.debtor, a["sellCurrency"]), (ins.creditor, a["buyCurrency"])):
            if (party, currency) not in self.ledger.enabled:
                fail("bank not enabled for the currency", bank=self.ledger.name(party), currency=currency)
        if position.quote is None:
            fail("the cycle's quote index is out of range")
            return
        quote = position.quote.quote
        self._check_quote(fail, log, ins, quote, position.quote.signature, now)
        if quote.fee_bps > BPS:
            fail("quote's fee above 100 %", fee_bps=quote.fee_bps)
            return
        self._check_figures(fail, log, ins, quote)
        self._check_band(fail, quote, (a["sellCurrency"], a["buyCurrency"]), now)

    def _on_CycleSettled(self, log: Log) -> None:  # noqa: N802
        a = log.args
        self.cycles.checked += 1
        fail = self._failer(self.cycles, "", log)
        tally = self._tallies.pop(log.tx_hash, CycleTally())
        if a["cycle"] != self.last_cycle + 1:
            fail("cycle numbers are not consecutive", cycle=a["cycle"], previous=self.last_cycle)
        self.last_cycle = a["cycle"]
        self.ledger.cycles[log.tx_hash] = a["cycle"]
        if tally.numbers - {a["cycle"]}:
            fail("instructions name another cycle", cycle=a["cycle"], named=sorted(tally.numbers))
        if a["instructions"] != tally.count:
            fail("instruction count differs from its instructions' events", event=a["instructions"], events=tally.count)
        gross = dict(zip(a["currencies"], a["gross"], strict=False))
        net = dict(zip(a["currencies"], a["net"], strict=False))
        if gross != dict(tally.gross):
            fail("gross per currency differs from its instructions' legs", event=gross, legs=dict(tally.gross))
        expected_net = {currency: tally.net().get(currency, 0) for currency in tally.gross}
        if net != expected_net:
            fail("net per currency differs from the net of its instructions' legs", event=net, legs=expected_net)
