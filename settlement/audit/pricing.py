"""The auditor's checks of a settlement's pricing: the quote behind it, the figures booked, and
the band around the reference rate (the vault's own rules, recomputed from the chain)."""

from __future__ import annotations

from settlement.audit.state import BANK, KIND_NAMES, LIQUIDITY_PROVIDER, Fail, Ledger, participant_state
from settlement.chain.events import Log
from settlement.conversion import BPS, convert
from settlement.eip712 import CompactSignature, Domain, Instruction, Quote, recover


class PricingChecks:
    """Mixed into :class:`settlement.audit.ledger.Replay`: what these checks read of the replay so far."""

    domain: Domain
    ledger: Ledger
    quote_signer: str
    band_bps: int
    rate_max_age_s: int

    def _check_quote(
        self, fail: Fail, log: Log, ins: Instruction, quote: Quote, signature: CompactSignature, now: int
    ) -> None:
        """The settlement's quote: signed by the oracle in force, for the pair, its liquidity provider, in time."""
        a = log.args
        try:
            signer = recover(self.domain, quote, signature)
        except ValueError as exc:
            signer = f"invalid signature ({exc})"
        if signer != self.quote_signer:
            fail("quote not signed by the oracle's quote key in force", signer=signer, quote_signer=self.quote_signer)
        if (quote.sell_currency, quote.buy_currency) != (ins.sell_currency, ins.buy_currency):
            fail("quote is for another pair", quote=f"{quote.sell_currency.decode()}/{quote.buy_currency.decode()}")
        if quote.liquidity_provider != a["liquidityProvider"]:
            fail("liquidity provider differs from the quote's", quote=quote.liquidity_provider)
        self._require_usable(fail, "liquidity provider", a["liquidityProvider"], LIQUIDITY_PROVIDER)
        self._require_usable(fail, "debtor", ins.debtor, BANK)
        self._require_usable(fail, "creditor", a["creditor"], BANK)
        if now > quote.expiry:
            fail("quote had expired", expiry=quote.expiry, block_time=now)

    def _check_figures(self, fail: Fail, log: Log, ins: Instruction, quote: Quote) -> None:
        """The booked buy amount and fee: the conversion at the quoted rate, and at least the bank's minimum."""
        a, sell, buy = log.args, ins.sell_currency.decode(), ins.buy_currency.decode()
        expected = convert(
            ins.sell_amount,
            quote.rate,
            quote.fee_bps,
            self.ledger.decimals.get(sell, 0),
            self.ledger.decimals.get(buy, 0),
        )
        if (expected.buy_amount, expected.fee) != (a["buyAmount"], a["fee"]):
            fail(
                "booked figures differ from the conversion at the quoted rate",
                expected=self._figures(expected.buy_amount, buy, expected.fee, sell),
                booked=self._figures(a["buyAmount"], buy, a["fee"], sell),
                rate=quote.rate,
                fee_bps=quote.fee_bps,
            )
        if a["buyAmount"] < ins.min_buy_amount:
            fail(
                "creditor received less than the instructed minimum",
                minimum=self.ledger.amount(ins.min_buy_amount, buy),
                paid=self.ledger.amount(a["buyAmount"], buy),
            )

    def _check_band(self, fail: Fail, quote: Quote, pair: tuple[str, str], now: int) -> None:
        """The quoted rate: within the band around a reference rate that was fresh at the block's time."""
        sell, buy = pair
        reference = self.ledger.rates.get((sell, buy))
        if reference is None:
            fail("no reference rate published for the pair", pair=f"{sell}/{buy}")
            return
        ref_rate, published_at = reference
        if now > published_at + self.rate_max_age_s:
            fail(
                "reference rate in force was stale",
                published_at=published_at,
                block_time=now,
                rate_max_age_s=self.rate_max_age_s,
            )
        if abs(quote.rate - ref_rate) * BPS > ref_rate * self.band_bps:
            fail(
                "rate outside the band around the reference rate",
                rate=quote.rate,
                reference_rate=ref_rate,
                band_bps=self.band_bps,
            )

    def _require_usable(self, fail: Fail, role: str, address: str, kind: int) -> None:
        """The participant was registered as ``kind``, active and not frozen at this point of the replay."""
        p = self.ledger.participants.get(address)
        if p is None or not p.usable_as(kind):
            fail(
                f"{role} was not an active, unfrozen {KIND_NAMES[kind]}",
                state=participant_state(p),
                **{role.replace(" ", "_"): self.ledger.name(address)},
            )

    def _figures(self, buy_amount: int, buy: str, fee: int, sell: str) -> str:
        return f"buy {self.ledger.amount(buy_amount, buy)}, fee {self.ledger.amount(fee, sell)}"
