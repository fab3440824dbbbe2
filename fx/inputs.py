"""Checks of what callers hand the FX engine: currency pairs and amounts.

Amounts come in as decimal strings in major units (``"1000000.00"``), parsed with
:class:`decimal.Decimal`, or as integers already in minor units. Every problem raises an
:class:`fx.errors.FxError` subclass whose message says what is allowed.
"""

from __future__ import annotations

from fx.errors import FxAmountError, FxCurrencyError, SameCurrencyError
from settlement import money
from settlement.errors import AmountError, UnknownCurrencyError

AMOUNT_MINOR_MAX = money.AMOUNT_MINOR_MAX


def currency(code: object) -> money.Currency:
    if not isinstance(code, str):
        raise FxCurrencyError(f"a currency is a three-letter ISO 4217 code, not {type(code).__name__}")
    try:
        return money.currency(code)
    except UnknownCurrencyError as exc:
        raise FxCurrencyError(str(exc)) from None


def pair(sell: object, buy: object) -> tuple[money.Currency, money.Currency]:
    """Both currencies of a pair, which must differ."""
    s, b = currency(sell), currency(buy)
    if s.code == b.code:
        raise SameCurrencyError(f"{s.code}/{b.code}: a pair needs two different currencies")
    return s, b


def amount_minor(amount: object, code: str) -> int:
    """An amount in minor units of ``code``: a decimal string in major units or an int in minor units."""
    cur = currency(code)
    if isinstance(amount, bool) or not isinstance(amount, str | int):
        raise FxAmountError(
            f'amounts are decimal strings in major units ("1000.00") or integers in minor units, '
            f"not {type(amount).__name__}"
        )
    if isinstance(amount, int):
        if amount <= 0:
            raise FxAmountError(f"{amount} minor units of {cur.code}: the amount must be positive")
        if amount > AMOUNT_MINOR_MAX:
            raise FxAmountError(
                f"{amount} minor units of {cur.code} is more than the ledger holds (at most {AMOUNT_MINOR_MAX})"
            )
        return amount
    try:
        return money.to_minor(amount, cur.code)
    except AmountError as exc:
        raise FxAmountError(str(exc)) from None
