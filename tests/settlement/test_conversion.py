import pytest

from settlement.conversion import convert


def test_known_figures() -> None:
    assert convert(1_000_00, 920_000_000_000_000_000, 5, 2, 2) == (919_54, 50)
    assert convert(1_00, 150_123_000_000_000_000_000, 0, 2, 0) == (150, 0)
    assert convert(1_000, 3_250_000_000_000_000_000, 0, 3, 2) == (3_25, 0)


def test_rounds_in_favour_of_the_liquidity_provider() -> None:
    # 0.01 USD at 0.999... EUR buys 0.00 EUR: the fraction stays with the provider.
    assert convert(1, 999_999_999_999_999_999, 0, 2, 2).buy_amount == 0


@pytest.mark.parametrize("args", [(-1, 1, 0, 2, 2), (1, 2**128, 0, 2, 2), (1, 1, 10_001, 2, 2), (1, 1, 0, 19, 2)])
def test_rejects_out_of_range(args: tuple[int, int, int, int, int]) -> None:
    with pytest.raises(ValueError):
        convert(*args)
