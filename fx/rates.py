"""Rates: the mid rate a provider gives (:class:`Rate`), as an 18-decimal integer of units of
the buy currency per one unit of the sell currency (major units), and what every provider
answers to (:class:`RateProvider`; the providers are in :mod:`fx.providers`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

RATE_DECIMALS = 18
RATE_SCALE = 10**RATE_DECIMALS
UTC = dt.UTC


def to_fixed(rate: Decimal) -> int:
    """An 18-decimal fixed-point integer, rounded down (in the liquidity provider's favour)."""
    return int(rate.scaleb(RATE_DECIMALS).to_integral_value(rounding="ROUND_DOWN"))


def from_fixed(rate: int) -> Decimal:
    return Decimal(rate).scaleb(-RATE_DECIMALS)


def format_rate(rate: int, places: int = 6) -> str:
    """A fixed-point rate for people, cut (not rounded) to ``places`` decimals."""
    whole, frac = divmod(rate, RATE_SCALE)
    return f"{whole}.{frac:018d}"[: len(str(whole)) + 1 + places]


@dataclass(frozen=True, slots=True)
class Rate:
    sell: str
    buy: str
    rate: int
    """Mid rate, 18 decimals: major units of ``buy`` per major unit of ``sell``."""
    source: str
    as_of: dt.datetime
    """The moment the rate describes (a fixing's publication, a live fetch), timezone-aware."""
    provider: str = ""

    def age_s(self, now: dt.datetime) -> float:
        return (now - self.as_of).total_seconds()


class RateProvider(Protocol):
    name: str

    def rate(self, sell: str, buy: str, now: dt.datetime) -> Rate: ...


# ---------------------------------------------------------------------------------------- ECB
