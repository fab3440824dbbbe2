"""Locked FX quotes: priced from a mid rate, signed with the quote key as the vault verifies them.

A quote is made in one of two kinds:

* **sell fixed**: the debtor sells exactly ``sell_amount``; ``buy_amount`` is what the
  vault's conversion yields at the quoted rate after the fee.
* **buy fixed**: the creditor must receive ``buy_amount``. The sell amount is the smallest
  one whose conversion reaches it, so rounding never leaves the creditor a minor unit short.
  The conversion rounds down, so the smallest sell amount usually converts to a little more
  than asked; the quoted rate is then lowered (in the liquidity provider's favour, by less
  than :data:`EXACT_ADJUST_BPS_MAX`) until it converts to exactly ``buy_amount``. Only when
  the sell amount is so small that no rate within that bound hits the figure does the
  creditor receive more than asked, never less.

In both kinds ``buy_amount`` and ``fee`` are exactly what :func:`settlement.conversion.convert` (and
the contract) yield for ``sell_amount`` at ``rate`` and ``fee_bps``; :func:`verify_quote`
checks that, the quote key's EIP-712 signature over the on-chain fields, and the expiry.

The quote's ``id`` is ``keccak256(quoteHash ‖ sellAmount ‖ buyAmount)``: the on-chain quote's
struct hash (what the contract's errors name) bound to the amounts it was priced for.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from typing import Any

from eth_account import Account
from eth_keys.datatypes import PrivateKey
from eth_utils.address import is_address, to_checksum_address
from eth_utils.crypto import keccak

from fx import inputs
from fx.errors import FxAmountError, FxError, QuoteAmountsError, QuoteError, QuoteExpiredError, QuoteSignatureError
from fx.pricing import PairPricing, Pricing
from fx.rates import RATE_SCALE, Rate, RateProvider, from_fixed
from settlement import money
from settlement.conversion import BPS, convert
from settlement.eip712 import CompactSignature, Domain, Quote, recover, sign

EXACT_ADJUST_BPS_MAX = 1
"""How far below the priced rate a buy-fixed quote may go to deliver exactly the amount asked."""


class QuoteKind(StrEnum):
    SELL_FIXED = "sell_fixed"
    BUY_FIXED = "buy_fixed"


@dataclass(frozen=True, slots=True)
class LockedQuote:
    kind: QuoteKind
    sell_currency: str
    buy_currency: str
    sell_amount: int
    """Minor units of the sell currency the debtor pays, fee included."""
    buy_amount: int
    """Minor units of the buy currency the creditor receives."""
    fee: int
    """Minor units of the sell currency taken as the fee leg."""
    fee_bps: int
    mid_rate: int
    spread_bps: int
    rate: int
    """The quoted rate, 18 decimals: what the vault converts at."""
    liquidity_provider: str
    expiry: int
    """Unix seconds; the vault accepts the quote up to and including this second."""
    source: str
    as_of: dt.datetime
    tier: str = ""
    signature: CompactSignature | None = None

    def onchain(self) -> Quote:
        """The fields the vault sees and the quote key signs."""
        return Quote(
            sell_currency=self.sell_currency.encode(),
            buy_currency=self.buy_currency.encode(),
            rate=self.rate,
            fee_bps=self.fee_bps,
            liquidity_provider=self.liquidity_provider,
            expiry=self.expiry,
        )

    @property
    def quote_hash(self) -> bytes:
        return self.onchain().struct_hash()

    @property
    def id(self) -> str:
        return (
            "0x"
            + keccak(self.quote_hash + self.sell_amount.to_bytes(32, "big") + self.buy_amount.to_bytes(32, "big")).hex()
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form: amounts as minor-unit integers and as decimal strings."""
        return {
            "id": self.id,
            "kind": self.kind.value,
            "sell_currency": self.sell_currency,
            "buy_currency": self.buy_currency,
            "sell_amount_minor": self.sell_amount,
            "sell_amount": money.format_minor(self.sell_amount, self.sell_currency),
            "buy_amount_minor": self.buy_amount,
            "buy_amount": money.format_minor(self.buy_amount, self.buy_currency),
            "fee_minor": self.fee,
            "fee": money.format_minor(self.fee, self.sell_currency),
            "fee_bps": self.fee_bps,
            "mid_rate": str(self.mid_rate),
            "spread_bps": self.spread_bps,
            "rate": str(self.rate),
            "rate_decimal": str(from_fixed(self.rate).normalize()),
            "liquidity_provider": self.liquidity_provider,
            "expiry": self.expiry,
            "source": self.source,
            "as_of": self.as_of.isoformat(),
            "tier": self.tier,
            "quote_hash": "0x" + self.quote_hash.hex(),
            "signature": None
            if self.signature is None
            else {"r": "0x" + self.signature.r.hex(), "vs": "0x" + self.signature.vs.hex()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LockedQuote:
        """The inverse of :meth:`to_dict` (the ``id`` and display fields are recomputed, not read)."""
        try:
            sig = data.get("signature")
            signature = None if sig is None else CompactSignature(_hex(sig["r"]), _hex(sig["vs"]))
            return cls(
                kind=QuoteKind(data["kind"]),
                sell_currency=str(data["sell_currency"]),
                buy_currency=str(data["buy_currency"]),
                sell_amount=int(data["sell_amount_minor"]),
                buy_amount=int(data["buy_amount_minor"]),
                fee=int(data["fee_minor"]),
                fee_bps=int(data["fee_bps"]),
                mid_rate=int(data["mid_rate"]),
                spread_bps=int(data["spread_bps"]),
                rate=int(data["rate"]),
                liquidity_provider=to_checksum_address(data["liquidity_provider"]),
                expiry=int(data["expiry"]),
                source=str(data["source"]),
                as_of=dt.datetime.fromisoformat(data["as_of"]),
                tier=str(data.get("tier", "")),
                signature=signature,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise QuoteError(f"not a quote: {exc}") from None


def _hex(value: str) -> bytes:
    raw = bytes.fromhex(value.removeprefix("0x"))
    if len(raw) != 32:
        raise ValueError("a signature word is 32 bytes")
    return raw


class QuoteSigner:
    """The oracle's quote key, bound to one deployment's EIP-712 domain."""

    def __init__(self, domain: Domain, private_key: str) -> None:
        self.domain = domain
        self._key = PrivateKey(bytes.fromhex(private_key.removeprefix("0x")))
        self.address: str = Account.from_key(private_key).address
        # Quotes of one pair, tier and second are the same struct: signed once.
        self._cached = lru_cache(maxsize=4096)(self._sign)

    def sign(self, quote: Quote) -> CompactSignature:
        return self._cached(quote)

    def _sign(self, quote: Quote) -> CompactSignature:
        return sign(self.domain, quote, self._key)


Clock = Callable[[], float]


class QuoteEngine:
    """Mid rate from a provider, spread and fee from the pricing, amounts by the vault's conversion."""

    def __init__(
        self,
        rates: RateProvider,
        pricing: Pricing,
        liquidity_provider: str,
        signer: QuoteSigner | None = None,
        clock: Clock = time.time,
    ) -> None:
        if not is_address(liquidity_provider):
            raise QuoteError(f"liquidity provider {liquidity_provider!r} is not an address")
        self.rates = rates
        self.pricing = pricing
        self.liquidity_provider = to_checksum_address(liquidity_provider)
        self.signer = signer
        self.clock = clock

    def mid(self, sell: str, buy: str) -> Rate:
        return self.rates.rate(sell, buy, self._now())

    def frozen(self) -> QuoteEngine:
        """This engine with its clock stopped now and each pair's mid rate read once: for pricing
        a batch of transfers together (the same second, so the same rates and expiry)."""
        now_s = self.clock()
        return QuoteEngine(_MidOnce(self.rates), self.pricing, self.liquidity_provider, self.signer, lambda: now_s)

    def quote_sell(self, sell: str, sell_amount: object, buy: str) -> LockedQuote:
        """Sell exactly ``sell_amount`` (decimal string in major units, or int minor units)."""
        s, b = inputs.pair(sell, buy)
        amount = inputs.amount_minor(sell_amount, s.code)
        mid = self.mid(s.code, b.code)
        priced = self.pricing.for_pair(s.code, b.code, self._notional(s.code, amount, mid))
        rate = _apply_spread(mid.rate, priced.spread_bps)
        conv = convert(amount, rate, priced.fee_bps, s.exponent, b.exponent)
        if conv.buy_amount == 0:
            raise FxAmountError(
                f"{money.format_minor(amount, s.code)} {s.code} buys less than one minor unit of {b.code}: "
                "quote a larger amount"
            )
        if conv.buy_amount > inputs.AMOUNT_MINOR_MAX:
            raise FxAmountError(f"{money.format_minor(amount, s.code)} {s.code} buys more than the ledger holds")
        return self._lock(QuoteKind.SELL_FIXED, s.code, b.code, amount, conv.buy_amount, conv.fee, mid, priced, rate)

    def quote_buy(self, sell: str, buy: str, buy_amount: object) -> LockedQuote:
        """Buy exactly ``buy_amount`` for the creditor (decimal string in major units, or int minor units)."""
        s, b = inputs.pair(sell, buy)
        target = inputs.amount_minor(buy_amount, b.code)
        mid = self.mid(s.code, b.code)
        priced = self.pricing.for_pair(s.code, b.code, self._notional(b.code, target, None))
        priced_rate = _apply_spread(mid.rate, priced.spread_bps)
        sell_amount = smallest_sell_for(target, priced_rate, priced.fee_bps, s.exponent, b.exponent)
        rate = exact_rate_for(target, sell_amount, priced_rate, priced.fee_bps, s.exponent, b.exponent)
        conv = convert(sell_amount, rate, priced.fee_bps, s.exponent, b.exponent)
        assert conv.buy_amount >= target, "a buy-fixed quote must never leave the creditor short"
        return self._lock(
            QuoteKind.BUY_FIXED, s.code, b.code, sell_amount, conv.buy_amount, conv.fee, mid, priced, rate
        )

    def _lock(
        self,
        kind: QuoteKind,
        sell: str,
        buy: str,
        sell_amount: int,
        buy_amount: int,
        fee: int,
        mid: Rate,
        priced: PairPricing,
        rate: int,
    ) -> LockedQuote:
        quote = LockedQuote(
            kind=kind,
            sell_currency=sell,
            buy_currency=buy,
            sell_amount=sell_amount,
            buy_amount=buy_amount,
            fee=fee,
            fee_bps=priced.fee_bps,
            mid_rate=mid.rate,
            spread_bps=priced.spread_bps,
            rate=rate,
            liquidity_provider=priced.liquidity_provider or self.liquidity_provider,
            expiry=int(self.clock()) + self.pricing.quote_ttl_s,
            source=mid.source,
            as_of=mid.as_of,
            tier=priced.tier,
        )
        if self.signer is None:
            return quote
        return replace(quote, signature=self.signer.sign(quote.onchain()))

    def _notional(self, code: str, amount_minor: int, mid: Rate | None) -> Decimal:
        """``amount_minor`` of ``code`` in major units of the tier currency, at the mid rate."""
        major = Decimal(amount_minor).scaleb(-money.currency(code).exponent)
        tier = self.pricing.tier_currency
        if code == tier:
            return major
        rate = mid if mid is not None and mid.buy == tier else self.mid(code, tier)
        return major * from_fixed(rate.rate)

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC)


class _MidOnce:
    """A rate provider that asks the one it wraps once per pair (errors included)."""

    def __init__(self, rates: RateProvider) -> None:
        self.name = rates.name
        self._rates = rates
        self._seen: dict[tuple[str, str], Rate | FxError] = {}

    def rate(self, sell: str, buy: str, now: dt.datetime) -> Rate:
        if (sell, buy) not in self._seen:
            try:
                self._seen[(sell, buy)] = self._rates.rate(sell, buy, now)
            except FxError as exc:
                self._seen[(sell, buy)] = exc
        found = self._seen[(sell, buy)]
        if isinstance(found, FxError):
            raise found
        return found


def _apply_spread(mid: int, spread_bps: int) -> int:
    rate = mid * (BPS - spread_bps) // BPS
    if rate <= 0:
        raise QuoteError(f"a mid rate of {mid} (18 decimals) less {spread_bps} bps leaves no rate to quote")
    return rate


def smallest_sell_for(target: int, rate: int, fee_bps: int, sell_decimals: int, buy_decimals: int) -> int:
    """The least sell amount whose conversion is at least ``target`` (the conversion is monotone)."""
    high = inputs.AMOUNT_MINOR_MAX
    if convert(high, rate, fee_bps, sell_decimals, buy_decimals).buy_amount < target:
        raise FxAmountError("the amount asked for is more than the ledger can sell for at this rate")
    # Start from the closed-form estimate and bisect around it: at most ~112 steps, exact.
    low = 0  # convert(0) buys 0 < target: the invariant is buy(low) < target <= buy(high)
    estimate = target * RATE_SCALE * 10**sell_decimals // (rate * 10**buy_decimals) * BPS // max(BPS - fee_bps, 1)
    if 0 < estimate < high:
        if convert(estimate, rate, fee_bps, sell_decimals, buy_decimals).buy_amount >= target:
            high = estimate
        else:
            low = estimate
    while high - low > 1:
        mid = (low + high) // 2
        if convert(mid, rate, fee_bps, sell_decimals, buy_decimals).buy_amount >= target:
            high = mid
        else:
            low = mid
    return high


def exact_rate_for(
    target: int, sell_amount: int, rate: int, fee_bps: int, sell_decimals: int, buy_decimals: int
) -> int:
    """The rate at or below ``rate`` (by at most :data:`EXACT_ADJUST_BPS_MAX`) converting to ``target``.

    The least rate whose conversion reaches ``target`` is
    ``ceil(target * 10^18 * 10^sd / (net * 10^bd))``; when that converts to exactly ``target``
    and is close enough, it is used, else ``rate`` (which converts to at least ``target``).
    """
    fee = sell_amount * fee_bps // BPS
    net = sell_amount - fee
    numerator = target * RATE_SCALE * 10**sell_decimals
    denominator = net * 10**buy_decimals
    least: int = -(-numerator // denominator)
    close_enough = (rate - least) * BPS <= rate * EXACT_ADJUST_BPS_MAX
    if (
        least <= rate
        and close_enough
        and convert(sell_amount, least, fee_bps, sell_decimals, buy_decimals).buy_amount == target
    ):
        return least
    return rate


def verify_quote(quote: LockedQuote, domain: Domain, quote_signer: str, now_s: float) -> None:
    """Raise unless ``quote`` was signed by ``quote_signer`` for ``domain``, is unexpired and adds up.

    The signature covers what the vault sees (pair, rate, fee, liquidity provider, expiry);
    the amounts are not signed, because the vault recomputes them from the instruction, so
    they are checked by recomputing them here.
    """
    if quote.signature is None:
        raise QuoteSignatureError(f"quote {quote.id} carries no signature")
    try:
        signer = recover(domain, quote.onchain(), quote.signature)
    except Exception:
        raise QuoteSignatureError(f"quote {quote.id}: the signature is malformed") from None
    if signer.lower() != quote_signer.lower():
        raise QuoteSignatureError(
            f"quote {quote.id} does not carry the quote key's signature ({quote_signer}): its fields were "
            "altered or it was signed by another key"
        )
    if now_s > quote.expiry:
        raise QuoteExpiredError(
            f"quote {quote.id} expired at {dt.datetime.fromtimestamp(quote.expiry, dt.UTC):%Y-%m-%d %H:%M:%S}Z; "
            "ask for a new quote"
        )
    s, b = inputs.pair(quote.sell_currency, quote.buy_currency)
    conv = convert(quote.sell_amount, quote.rate, quote.fee_bps, s.exponent, b.exponent)
    if (conv.buy_amount, conv.fee) != (quote.buy_amount, quote.fee):
        raise QuoteAmountsError(
            f"quote {quote.id}: {quote.sell_amount} {s.code} at its rate and fee converts to {conv.buy_amount} "
            f"{b.code} with fee {conv.fee}, not the {quote.buy_amount} and {quote.fee} it states: it was altered"
        )
