// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice The transaction's net ledger movement per currency, kept in transient storage (EIP-1153)
/// as Uniswap v4's `CurrencyDelta` and `NonzeroDeltaCount` keep theirs: every booking adds its
/// movement, and before a call that moved anything returns, every currency must be back at zero.
/// @dev A currency's delta lives at `DELTA_BASE ^ currency`; the number of currencies whose delta
/// is not zero lives at `NONZERO_COUNT`. Both bases are hashes, so no key collides with another
/// transient key of the vault.
library CurrencyDeltas {
    /// @dev keccak256("corridor.currency-delta")
    uint256 private constant DELTA_BASE = 0x5865626a2ef65c4e53849911e85a0d36d1c91e813c86feb607086d0d4342f533;
    /// @dev keccak256("corridor.nonzero-delta-count")
    uint256 private constant NONZERO_COUNT = 0x465dc34cfb74241f20ae573e4f10e188d72a1e2493ecc832320cdfa74dafd1c3;

    /// @notice Adds `amount` (signed: a liability of the vault grew by it) to the currency's delta.
    function add(bytes3 currency, int256 amount) internal {
        uint256 key = DELTA_BASE ^ uint256(uint24(currency));
        assembly ("memory-safe") {
            let previous := tload(key)
            // Amounts are bounded by 2**129 per movement and a call holds a bounded number of
            // movements, so the sum stays far inside int256.
            let next := add(previous, amount)
            tstore(key, next)
            // One more currency out of balance when it leaves zero, one fewer when it returns.
            if iszero(previous) { tstore(NONZERO_COUNT, add(tload(NONZERO_COUNT), 1)) }
            if iszero(next) { tstore(NONZERO_COUNT, sub(tload(NONZERO_COUNT), 1)) }
        }
    }

    /// @notice The currency's delta so far in this transaction.
    function get(bytes3 currency) internal view returns (int256 delta) {
        uint256 key = DELTA_BASE ^ uint256(uint24(currency));
        assembly ("memory-safe") {
            delta := tload(key)
        }
    }

    /// @notice How many currencies have a delta that is not zero.
    function nonzeroCount() internal view returns (uint256 count) {
        assembly ("memory-safe") {
            count := tload(NONZERO_COUNT)
        }
    }
}
