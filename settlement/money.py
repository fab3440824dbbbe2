"""Currencies and amounts: integers in the currency's minor unit, never floats.

Only the currencies Corridor may list are here, each with its ISO 4217 exponent. Amounts
typed by people (``"250000.00"``) are parsed from strings with :class:`decimal.Decimal` and
must not carry more decimals than the currency has.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import NewType

from settlement.errors import AmountError, UnknownCurrencyError

MinorUnits = NewType("MinorUnits", int)

AMOUNT_MINOR_MAX = 2**112 - 1
"""The largest balance the vault can book (its balances are 112-bit)."""


@dataclass(frozen=True, slots=True)
class Currency:
    code: str
    exponent: int
    name: str

    @property
    def code_bytes(self) -> bytes:
        """The 3-byte form the contracts use (``bytes3``)."""
        return self.code.encode("ascii")


_ISO4217: dict[str, tuple[int, str]] = {
    "USD": (2, "US Dollar"),
    "EUR": (2, "Euro"),
    "GBP": (2, "Pound Sterling"),
    "JPY": (0, "Yen"),
    "CNY": (2, "Yuan Renminbi"),
    "SGD": (2, "Singapore Dollar"),
    "CHF": (2, "Swiss Franc"),
    "HKD": (2, "Hong Kong Dollar"),
    "AUD": (2, "Australian Dollar"),
    "CAD": (2, "Canadian Dollar"),
    "INR": (2, "Indian Rupee"),
    "KRW": (0, "Won"),
    "KWD": (3, "Kuwaiti Dinar"),
    "BHD": (3, "Bahraini Dinar"),
    "SEK": (2, "Swedish Krona"),
    "NOK": (2, "Norwegian Krone"),
}

CURRENCIES: dict[str, Currency] = {code: Currency(code, exp, name) for code, (exp, name) in _ISO4217.items()}

_CODE = re.compile(r"^[A-Z]{3}$")


def currency(code: str | bytes) -> Currency:
    """The currency for an ISO 4217 code, or :class:`UnknownCurrencyError`."""
    text = code.rstrip(b"\0").decode("ascii", "replace") if isinstance(code, bytes) else code
    if not _CODE.match(text):
        raise UnknownCurrencyError(
            f"{text!r} is not a currency code: use three upper-case letters, one of {', '.join(sorted(CURRENCIES))}"
        )
    found = CURRENCIES.get(text)
    if found is None:
        raise UnknownCurrencyError(f"{text} is not a currency Corridor knows; known: {', '.join(sorted(CURRENCIES))}")
    return found


def to_minor(amount: str, code: str) -> MinorUnits:
    """Parse a decimal amount in major units (``"1000.50"``) into minor units."""
    cur = currency(code)
    if not isinstance(amount, str):
        raise AmountError(f"amounts are given as decimal strings, not {type(amount).__name__}")
    try:
        value = Decimal(amount.strip().replace("_", ""))
    except InvalidOperation:
        raise AmountError(f"{amount!r} is not a number") from None
    if not value.is_finite():
        raise AmountError(f"{amount!r} is not a finite amount")
    if value <= 0:
        raise AmountError(f"{amount} {cur.code}: the amount must be positive")
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    if -exponent > cur.exponent:
        raise AmountError(
            f"{amount} {cur.code}: {cur.code} has {cur.exponent} decimal place"
            f"{'' if cur.exponent == 1 else 's'}, so at most {cur.exponent} are allowed"
        )
    minor = int(value.scaleb(cur.exponent))
    if minor > AMOUNT_MINOR_MAX:
        raise AmountError(
            f"{amount} {cur.code} is larger than the ledger can hold: "
            f"at most {format_minor(AMOUNT_MINOR_MAX, cur.code)} {cur.code}"
        )
    return MinorUnits(minor)


def format_minor(amount: int, code: str) -> str:
    """Minor units as a plain decimal string in major units (``100050`` USD -> ``1000.50``)."""
    cur = currency(code)
    if cur.exponent == 0:
        return str(amount)
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**cur.exponent)
    return f"{sign}{whole}.{frac:0{cur.exponent}d}"
