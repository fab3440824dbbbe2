"""Pricing (spreads, tiers, fees), both quote kinds, signing and verification, and bad input."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fx.errors import (
    FxAmountError,
    FxCurrencyError,
    FxError,
    PricingConfigError,
    QuoteAmountsError,
    QuoteError,
    QuoteExpiredError,
    QuoteSignatureError,
    SameCurrencyError,
)
from fx.pricing import DEFAULT_PRICING_PATH, Pricing
from fx.quotes import (
    EXACT_ADJUST_BPS_MAX,
    LockedQuote,
    QuoteEngine,
    QuoteKind,
    QuoteSigner,
    exact_rate_for,
    smallest_sell_for,
    verify_quote,
)
from fx.rates import Rate, to_fixed
from settlement.chain.keys import devnet_key
from settlement.conversion import convert
from settlement.eip712 import Domain, recover

NOW_S = 1_795_000_000
NOW = dt.datetime.fromtimestamp(NOW_S, dt.UTC)
LP = "0x00000000000000000000000000000000000000aa"
DOMAIN = Domain(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
ORACLE_KEY = devnet_key(2)

MIDS = {
    ("USD", "EUR"): Decimal("0.9"),
    ("USD", "JPY"): Decimal("150"),
    ("EUR", "USD"): 1 / Decimal("0.9"),
    ("JPY", "USD"): 1 / Decimal("150"),
    ("GBP", "SGD"): Decimal("1.7"),
    ("GBP", "USD"): Decimal("1.25"),
    ("SGD", "USD"): Decimal("0.75"),
    ("USD", "KWD"): Decimal("0.3075"),
    ("KWD", "USD"): 1 / Decimal("0.3075"),
    ("KWD", "JPY"): Decimal("487.8"),
    ("JPY", "KWD"): 1 / Decimal("487.8"),
}


class Book:
    name = "book"

    def rate(self, sell: str, buy: str, now: dt.datetime) -> Rate:
        return Rate(sell, buy, to_fixed(MIDS[(sell, buy)]), "test book", NOW - dt.timedelta(hours=1), self.name)


PRICING: dict[str, Any] = {
    "quote_ttl_s": 60,
    "tier_currency": "USD",
    "default": {
        "fee_bps": 2,
        "tiers": [{"up_to": "100000", "spread_bps": 30}, {"up_to": "1000000", "spread_bps": 20}, {"spread_bps": 10}],
    },
    "pairs": {"USD/JPY": {"fee_bps": 1, "tiers": [{"spread_bps": 6}], "liquidity_provider": LP.replace("aa", "bb")}},
}


def engine(signed: bool = True, now_s: int = NOW_S) -> QuoteEngine:
    signer = QuoteSigner(DOMAIN, ORACLE_KEY) if signed else None
    return QuoteEngine(Book(), Pricing.from_dict(PRICING), LP, signer, clock=lambda: now_s)


ORACLE = QuoteSigner(DOMAIN, ORACLE_KEY).address


# ------------------------------------------------------------------------------------- pricing


def test_builtin_pricing_file_loads() -> None:
    pricing = Pricing.load(DEFAULT_PRICING_PATH)
    assert pricing.quote_ttl_s == 60 and pricing.tier_currency == "USD"


@pytest.mark.parametrize(
    ("notional", "spread", "tier"),
    [("1", 30, "tier 1"), ("100000", 30, "tier 1"), ("100000.01", 20, "tier 2"), ("5000000", 10, "tier 3")],
)
def test_tiers_by_notional(notional: str, spread: int, tier: str) -> None:
    priced = Pricing.from_dict(PRICING).for_pair("USD", "EUR", Decimal(notional))
    assert (priced.spread_bps, priced.fee_bps) == (spread, 2) and priced.tier.startswith(tier)


def test_tier_labels_name_their_bounds() -> None:
    pricing = Pricing.from_dict(PRICING)
    assert pricing.for_pair("USD", "EUR", Decimal("50")).tier == "tier 1 (up to 100000 USD)"
    assert pricing.for_pair("USD", "EUR", Decimal("5000000")).tier == "tier 3 (above 1000000 USD)"
    assert pricing.for_pair("USD", "JPY", Decimal("5")).tier == "tier 1 (any amount)"


def test_pair_overrides_default() -> None:
    priced = Pricing.from_dict(PRICING).for_pair("USD", "JPY", Decimal("10"))
    assert (priced.spread_bps, priced.fee_bps, priced.liquidity_provider) == (6, 1, LP.replace("aa", "bb"))


def _with(**changes: Any) -> dict[str, Any]:
    data = {**PRICING, "default": {**PRICING["default"]}}
    for key, value in changes.items():
        if key.startswith("default_"):
            data["default"][key.removeprefix("default_")] = value
        else:
            data[key] = value
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_with(colour="red"), "colour: unknown key"),
        (_with(default_spread=3), "default.spread: unknown key"),
        (_with(default_fee_bps=-1), "default.fee_bps: Input should be greater than or equal to 0"),
        (_with(default_tiers=[{"spread_bps": -5}]), "default.tiers.0.spread_bps"),
        (_with(default_tiers=[{"spread_bps": 5000}]), "less than or equal to 1000"),
        (_with(default_tiers=[{"up_to": "10", "spread_bps": 5}]), "the last tier must have no up_to"),
        (
            _with(default_tiers=[{"up_to": "10", "spread_bps": 5}, {"up_to": "5", "spread_bps": 4}, {"spread_bps": 1}]),
            "strictly increasing",
        ),
        (_with(default_tiers=[{"up_to": "-10", "spread_bps": 5}, {"spread_bps": 1}]), "positive amount"),
        (_with(default_tiers=[]), "at least 1 item"),
        (_with(tier_currency="XYZ"), "XYZ is not a currency"),
        (_with(pairs={"USD/XYZ": {"tiers": [{"spread_bps": 1}]}}), "XYZ"),
        (_with(pairs={"USD/USD": {"tiers": [{"spread_bps": 1}]}}), "two different currencies"),
        (_with(pairs={"USDJPY": {"tiers": [{"spread_bps": 1}]}}), "SELL/BUY"),
        (_with(quote_ttl_s=0), "quote_ttl_s"),
        (_with(default_liquidity_provider="0x12"), "not an Ethereum address"),
    ],
)
def test_pricing_errors_name_the_key_and_the_rule(data: dict[str, Any], message: str) -> None:
    with pytest.raises(PricingConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Pricing.from_dict(data)


def test_pricing_file_errors(tmp_path: Path) -> None:
    with pytest.raises(PricingConfigError, match="No such file"):
        Pricing.load(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("quote_ttl_s = = 3")
    with pytest.raises(PricingConfigError, match="bad.toml"):
        Pricing.load(bad)


# -------------------------------------------------------------------------------- sell fixed


def test_sell_fixed_quote_prices_from_the_mid_less_the_tier_spread() -> None:
    q = engine().quote_sell("USD", "1000000.00", "EUR")
    mid = to_fixed(Decimal("0.9"))
    assert q.kind is QuoteKind.SELL_FIXED
    assert (q.mid_rate, q.spread_bps, q.fee_bps) == (mid, 20, 2)
    assert q.rate == mid * (10_000 - 20) // 10_000
    assert q.sell_amount == 1_000_000_00
    assert (q.buy_amount, q.fee) == tuple(convert(1_000_000_00, q.rate, 2, 2, 2))
    assert q.fee == 200_00 and q.buy_amount == 898_020_36
    assert (q.expiry, q.liquidity_provider, q.source) == (NOW_S + 60, LP.replace("aa", "AA"), "test book")


def test_sell_fixed_tier_measured_in_the_tier_currency() -> None:
    # 70,000 GBP is 87,500 USD at the mid: tier 1; 90,000 GBP is 112,500 USD: tier 2.
    assert engine().quote_sell("GBP", "70000.00", "SGD").spread_bps == 30
    assert engine().quote_sell("GBP", "90000.00", "SGD").spread_bps == 20


def test_pair_liquidity_provider_is_used() -> None:
    assert engine().quote_sell("USD", "100.00", "JPY").liquidity_provider.lower() == LP.replace("aa", "bb")


def test_amount_buying_less_than_one_minor_unit_is_refused() -> None:
    with pytest.raises(FxAmountError, match="less than one minor unit"):
        engine().quote_sell("JPY", "1", "USD")  # 1 yen is 0.67 cents
    assert engine().quote_sell("JPY", "2", "USD").buy_amount == 1


# --------------------------------------------------------------------------------- buy fixed


@pytest.mark.parametrize(
    ("sell", "buy", "amount", "minor"),
    [
        ("USD", "EUR", "1000000.00", 1_000_000_00),
        ("USD", "JPY", "1000000", 1_000_000),
        ("GBP", "SGD", "250000.00", 250_000_00),
        ("USD", "KWD", "1234.567", 1_234_567),
        ("KWD", "JPY", "999", 999),
    ],
)
def test_buy_fixed_delivers_exactly_the_amount(sell: str, buy: str, amount: str, minor: int) -> None:
    q = engine().quote_buy(sell, buy, amount)
    assert q.kind is QuoteKind.BUY_FIXED and q.buy_amount == minor
    sd, bd = (2 if c != "JPY" and c != "KWD" else 0 if c == "JPY" else 3 for c in (sell, buy))
    assert convert(q.sell_amount, q.rate, q.fee_bps, sd, bd).buy_amount == minor
    # One minor unit less would leave the creditor short at the priced rate.
    priced = q.mid_rate * (10_000 - q.spread_bps) // 10_000
    assert convert(q.sell_amount - 1, priced, q.fee_bps, sd, bd).buy_amount < minor
    assert priced - q.rate <= priced * EXACT_ADJUST_BPS_MAX // 10_000


rates_st = st.integers(10**14, 10**22)  # 10^-4 to 10^4
exponents = st.sampled_from([0, 2, 3])


@settings(max_examples=3000, deadline=None)
@given(
    target_major=st.integers(1, 10**12),
    rate=rates_st,
    fee_bps=st.integers(0, 100),
    sd=exponents,
    bd=exponents,
    cents=st.integers(0, 999),
)
def test_buy_fixed_is_never_short_and_sells_no_more_than_needed(
    target_major: int, rate: int, fee_bps: int, sd: int, bd: int, cents: int
) -> None:
    target = target_major * 10**bd + cents % 10**bd
    try:
        sell = smallest_sell_for(target, rate, fee_bps, sd, bd)
    except FxAmountError:
        assert convert(2**112 - 1, rate, fee_bps, sd, bd).buy_amount < target
        return
    assert convert(sell, rate, fee_bps, sd, bd).buy_amount >= target
    assert sell == 1 or convert(sell - 1, rate, fee_bps, sd, bd).buy_amount < target
    exact = exact_rate_for(target, sell, rate, fee_bps, sd, bd)
    got = convert(sell, exact, fee_bps, sd, bd).buy_amount
    assert exact <= rate and got >= target  # never short, never a better rate than priced
    if exact < rate:
        assert got == target and (rate - exact) * 10_000 <= rate * EXACT_ADJUST_BPS_MAX


# ------------------------------------------------------------------------- signing, verifying


def test_quote_is_signed_by_the_oracle_as_the_contract_verifies() -> None:
    q = engine().quote_sell("USD", "250000.00", "EUR")
    assert q.signature is not None
    assert recover(DOMAIN, q.onchain(), q.signature) == ORACLE
    verify_quote(q, DOMAIN, ORACLE, NOW_S)
    verify_quote(q, DOMAIN, ORACLE, q.expiry)  # valid through its expiry second, as on chain


@pytest.mark.parametrize(
    "tamper",
    [
        {"rate": 1},
        {"fee_bps": 0},
        {"liquidity_provider": "0x00000000000000000000000000000000000000cc"},
        {"expiry": NOW_S + 3600},
        {"buy_currency": "GBP"},
    ],
)
def test_tampered_signed_fields_fail_the_signature(tamper: dict[str, Any]) -> None:
    q = engine().quote_sell("USD", "250000.00", "EUR")
    with pytest.raises(QuoteSignatureError, match="altered or it was signed by another key"):
        verify_quote(dataclasses.replace(q, **tamper), DOMAIN, ORACLE, NOW_S)


@pytest.mark.parametrize("tamper", [{"buy_amount": 1}, {"sell_amount": 100_00}, {"fee": 1}])
def test_tampered_amounts_fail_the_arithmetic(tamper: dict[str, Any]) -> None:
    q = engine().quote_sell("USD", "250000.00", "EUR")
    with pytest.raises(QuoteAmountsError, match="it was altered"):
        verify_quote(dataclasses.replace(q, **{k: getattr(q, k) + v for k, v in tamper.items()}), DOMAIN, ORACLE, NOW_S)


def test_quote_for_another_deployment_or_signer_fails() -> None:
    q = engine().quote_sell("USD", "250000.00", "EUR")
    with pytest.raises(QuoteSignatureError):
        verify_quote(q, Domain(1, DOMAIN.verifying_contract), ORACLE, NOW_S)
    with pytest.raises(QuoteSignatureError):
        verify_quote(q, DOMAIN, LP, NOW_S)


def test_expired_and_unsigned_quotes_fail() -> None:
    q = engine().quote_sell("USD", "250000.00", "EUR")
    with pytest.raises(QuoteExpiredError, match="ask for a new quote"):
        verify_quote(q, DOMAIN, ORACLE, q.expiry + 1)
    with pytest.raises(QuoteSignatureError, match="no signature"):
        verify_quote(engine(signed=False).quote_sell("USD", "250000.00", "EUR"), DOMAIN, ORACLE, NOW_S)


def test_quote_round_trips_through_json_form() -> None:
    q = engine().quote_buy("USD", "JPY", "1000000")
    data = q.to_dict()
    assert data["buy_amount"] == "1000000" and data["sell_amount_minor"] == q.sell_amount
    assert LockedQuote.from_dict(data) == q
    assert LockedQuote.from_dict(data).id == q.id
    with pytest.raises(QuoteError, match="not a quote"):
        LockedQuote.from_dict({**data, "rate": "abc"})


def test_quote_id_binds_the_amounts() -> None:
    q = engine().quote_sell("USD", "250000.00", "EUR")
    assert q.id != dataclasses.replace(q, buy_amount=q.buy_amount - 1).id
    assert q.quote_hash == dataclasses.replace(q, buy_amount=q.buy_amount - 1).quote_hash


# -------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (("usd", "100.00", "EUR"), FxCurrencyError, "three upper-case letters"),
        (("XYZ", "100.00", "EUR"), FxCurrencyError, "XYZ is not a currency Corridor knows"),
        (("USD", "100.00", "EURO"), FxCurrencyError, "three upper-case letters"),
        (("USD", "100.00", 7), FxCurrencyError, "not int"),
        (("USD", "100.00", "USD"), SameCurrencyError, "two different currencies"),
        (("USD", "0", "EUR"), FxAmountError, "must be positive"),
        (("USD", "-5.00", "EUR"), FxAmountError, "must be positive"),
        (("USD", 0, "EUR"), FxAmountError, "must be positive"),
        (("USD", "ten", "EUR"), FxAmountError, "not a number"),
        (("USD", "NaN", "EUR"), FxAmountError, "not a finite amount"),
        (("USD", "Infinity", "EUR"), FxAmountError, "not a finite amount"),
        (("USD", "1e40", "EUR"), FxAmountError, "larger than the ledger can hold: at most"),
        (("USD", 2**112, "EUR"), FxAmountError, "more than the ledger holds"),
        (("USD", "1.001", "EUR"), FxAmountError, "USD has 2 decimal places, so at most 2 are allowed"),
        (("JPY", "1.5", "USD"), FxAmountError, "JPY has 0 decimal places"),
        (("USD", 10.5, "EUR"), FxAmountError, "not float"),
        (("USD", True, "EUR"), FxAmountError, "not bool"),
    ],
)
def test_bad_input_raises_a_named_fx_error(args: tuple[Any, ...], error: type[FxError], message: str) -> None:
    with pytest.raises(error, match=message) as info:
        engine().quote_sell(*args)
    assert isinstance(info.value, FxError)


def test_bad_buy_amount_raises_too() -> None:
    with pytest.raises(FxAmountError, match="KWD has 3 decimal places"):
        engine().quote_buy("USD", "KWD", "1.0001")


def test_engine_refuses_a_bad_liquidity_provider() -> None:
    with pytest.raises(QuoteError, match="not an address"):
        QuoteEngine(Book(), Pricing.from_dict(PRICING), "nobody")
