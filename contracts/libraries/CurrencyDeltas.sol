// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice The net ledger movement per currency of one batch, which must end at zero, as
/// Uniswap v4 requires of every currency before an unlock ends.
library CurrencyDeltas {
    uint256 internal constant CURRENCIES_MAX = 16;

    struct Deltas {
        bytes3[CURRENCIES_MAX] currencies;
        int256[CURRENCIES_MAX] sums;
        uint256 count;
    }

    error BatchTooManyCurrencies(uint256 max);
    /// @notice The batch's ledger movements in `currency` do not sum to zero.
    error BatchNotNetted(bytes3 currency, int256 delta);

    function add(Deltas memory deltas, bytes3 currency, int256 amount) internal pure {
        uint256 count = deltas.count;
        for (uint256 i; i < count; ++i) {
            if (deltas.currencies[i] == currency) {
                deltas.sums[i] += amount;
                return;
            }
        }
        if (count == CURRENCIES_MAX) revert BatchTooManyCurrencies(CURRENCIES_MAX);
        deltas.currencies[count] = currency;
        deltas.sums[count] = amount;
        deltas.count = count + 1;
    }

    function requireNetted(Deltas memory deltas) internal pure {
        for (uint256 i; i < deltas.count; ++i) {
            if (deltas.sums[i] != 0) revert BatchNotNetted(deltas.currencies[i], deltas.sums[i]);
        }
    }
}
