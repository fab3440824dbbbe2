"""Pricing: the spread and fee per currency pair and amount tier, and how long a quote lives.

Configured in TOML (the built-in defaults are ``fx/pricing.toml``)::

    quote_ttl_s = 60
    tier_currency = "USD"            # tiers are measured in this currency, at the mid rate

    [default]                        # every pair without its own entry
    fee_bps = 2
    tiers = [
      { up_to = "1000000", spread_bps = 25 },   # notional up to 1,000,000.00 USD
      { up_to = "10000000", spread_bps = 15 },
      { spread_bps = 8 },                       # the rest: the last tier has no bound
    ]

    [pairs."USD/JPY"]
    fee_bps = 1
    liquidity_provider = "0x..."     # optional: who takes this pair (else the engine's default)
    tiers = [{ spread_bps = 6 }]

Unknown keys, negative or oversized spreads and fees, tiers out of order and unknown
currencies are refused at load, naming the key and what is allowed.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

from eth_utils.address import is_address, to_checksum_address
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fx import inputs
from fx.errors import PricingConfigError

DEFAULT_PRICING_PATH = Path(__file__).with_name("pricing.toml")
SPREAD_BPS_MAX = 1_000
"""10%: a wider spread is a typo, and the vault's band around the reference rate is narrower."""
FEE_BPS_MAX = 1_000
QUOTE_TTL_S_MAX = 3_600

Bps = Annotated[int, Field(ge=0, le=SPREAD_BPS_MAX)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class TierConfig(_Strict):
    up_to: str | None = None
    spread_bps: Bps

    @field_validator("up_to")
    @classmethod
    def _positive(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            amount = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"up_to {value!r} is not a decimal string") from None
        if not amount.is_finite() or amount <= 0:
            raise ValueError(f"up_to {value!r} must be a positive amount")
        return value


class PairConfig(_Strict):
    fee_bps: Annotated[int, Field(ge=0, le=FEE_BPS_MAX)] = 0
    liquidity_provider: str | None = None
    tiers: list[TierConfig] = Field(min_length=1)

    @field_validator("liquidity_provider")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None and not is_address(value):
            raise ValueError(f"{value!r} is not an Ethereum address")
        return None if value is None else to_checksum_address(value)

    @model_validator(mode="after")
    def _tiers_ascending(self) -> PairConfig:
        bounds = [t.up_to for t in self.tiers]
        if bounds[-1] is not None:
            raise ValueError("the last tier must have no up_to bound (it takes every larger amount)")
        if any(b is None for b in bounds[:-1]):
            raise ValueError("only the last tier may leave up_to out")
        values = [Decimal(b) for b in bounds[:-1] if b is not None]
        if values != sorted(set(values)):
            raise ValueError("tiers must be in strictly increasing order of up_to")
        return self


class PricingConfig(_Strict):
    quote_ttl_s: Annotated[int, Field(ge=1, le=QUOTE_TTL_S_MAX)] = 60
    tier_currency: str = "USD"
    default: PairConfig
    pairs: dict[str, PairConfig] = Field(default_factory=dict)

    @field_validator("tier_currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        return inputs.currency(value).code

    @field_validator("pairs")
    @classmethod
    def _pair_keys(cls, value: dict[str, PairConfig]) -> dict[str, PairConfig]:
        for key in value:
            parts = key.split("/")
            if len(parts) != 2:
                raise ValueError(f'pair {key!r} must be written "SELL/BUY", like "USD/JPY"')
            inputs.pair(parts[0], parts[1])
        return value


@dataclass(frozen=True, slots=True)
class PairPricing:
    """What applies to one quote: spread for its tier, fee, and a liquidity provider if set."""

    spread_bps: int
    fee_bps: int
    liquidity_provider: str | None
    tier: str


class Pricing:
    def __init__(self, config: PricingConfig, origin: str = "<built-in>") -> None:
        self.config = config
        self.origin = origin

    @property
    def quote_ttl_s(self) -> int:
        return self.config.quote_ttl_s

    @property
    def tier_currency(self) -> str:
        return self.config.tier_currency

    def for_pair(self, sell: str, buy: str, notional: Decimal) -> PairPricing:
        """The pricing of ``sell``/``buy`` for a notional in the tier currency (major units)."""
        pair = self.config.pairs.get(f"{sell}/{buy}", self.config.default)
        for i, tier in enumerate(pair.tiers):
            if tier.up_to is None or notional <= Decimal(tier.up_to):
                if tier.up_to is not None:
                    label = f"up to {tier.up_to} {self.tier_currency}"
                elif i > 0:
                    label = f"above {pair.tiers[i - 1].up_to} {self.tier_currency}"
                else:
                    label = "any amount"
                return PairPricing(tier.spread_bps, pair.fee_bps, pair.liquidity_provider, f"tier {i + 1} ({label})")
        raise AssertionError("the last tier is unbounded (checked at load)")

    @classmethod
    def load(cls, path: Path | None = None) -> Pricing:
        path = path or DEFAULT_PRICING_PATH
        try:
            data: Any = tomllib.loads(path.read_text())
        except OSError as exc:
            raise PricingConfigError(f"pricing file {path}: {exc.strerror or exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise PricingConfigError(f"pricing file {path}: {exc}") from None
        return cls.from_dict(data, str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], origin: str = "<dict>") -> Pricing:
        try:
            return cls(PricingConfig.model_validate(data), origin)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {_message(err)}" for err in exc.errors()
            )
            raise PricingConfigError(f"pricing {origin}: {problems}") from None


def _message(err: Any) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key"
    text = str(err["msg"])
    return text.removeprefix("Value error, ")
