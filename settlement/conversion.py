"""The conversion of ``contracts/libraries/Conversion.sol``, to the unit.

The fee is ``floor(sell * fee_bps / 10_000)``, taken from the sell amount; the rest is
converted at ``rate`` (18 decimals, major units of buy per major unit of sell) and rounded
down. Both roundings favour the liquidity provider. Integers only.
"""

from __future__ import annotations

from typing import NamedTuple

RATE_SCALE = 10**18
BPS = 10_000
DECIMALS_MAX = 18
UINT128_MAX = 2**128 - 1


class Conversion(NamedTuple):
    buy_amount: int
    fee: int


def convert(sell_amount: int, rate: int, fee_bps: int, sell_decimals: int, buy_decimals: int) -> Conversion:
    """Buy amount and fee, in minor units, exactly as the settlement contract books them."""
    if not 0 <= sell_amount <= UINT128_MAX:
        raise ValueError(f"sell amount {sell_amount} is outside 0..2**128-1")
    if not 0 <= rate <= UINT128_MAX:
        raise ValueError(f"rate {rate} is outside 0..2**128-1")
    if not 0 <= fee_bps <= BPS:
        raise ValueError(f"fee {fee_bps} bps is outside 0..10000")
    for decimals in (sell_decimals, buy_decimals):
        if not 0 <= decimals <= DECIMALS_MAX:
            raise ValueError(f"decimals {decimals} outside 0..{DECIMALS_MAX}")
    fee = sell_amount * fee_bps // BPS
    buy = (sell_amount - fee) * rate * 10**buy_decimals // (RATE_SCALE * 10**sell_decimals)
    return Conversion(buy, fee)
