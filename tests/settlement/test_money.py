import pytest

from settlement import money
from settlement.errors import AmountError, MoneyError, UnknownCurrencyError


@pytest.mark.parametrize(
    ("text", "code", "minor"),
    [("1000.50", "USD", 100050), ("1", "JPY", 1), ("0.001", "KWD", 1), ("1_000", "EUR", 100000)],
)
def test_to_minor(text: str, code: str, minor: int) -> None:
    assert money.to_minor(text, code) == minor


@pytest.mark.parametrize(
    ("text", "code", "fragment"),
    [
        ("1.001", "USD", "at most 2"),
        ("1.5", "JPY", "at most 0"),
        ("0", "USD", "positive"),
        ("-5", "USD", "positive"),
        ("abc", "USD", "not a number"),
        ("NaN", "USD", "finite"),
        ("Infinity", "USD", "finite"),
        ("1e40", "USD", "larger than the ledger"),
    ],
)
def test_to_minor_rejects(text: str, code: str, fragment: str) -> None:
    with pytest.raises(AmountError, match=fragment):
        money.to_minor(text, code)


@pytest.mark.parametrize("code", ["usd", "US", "XXX", "U$D"])
def test_unknown_currency(code: str) -> None:
    with pytest.raises(UnknownCurrencyError) as info:
        money.currency(code)
    assert isinstance(info.value, MoneyError) and isinstance(info.value, LookupError)


def test_exponents_are_iso4217() -> None:
    assert [money.currency(c).exponent for c in ("USD", "JPY", "KWD", "CHF")] == [2, 0, 3, 2]


def test_format_minor() -> None:
    assert money.format_minor(100050, "USD") == "1000.50"
    assert money.format_minor(150, "JPY") == "150"
    assert money.format_minor(-1, "KWD") == "-0.001"
