// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice One participant's balances in one currency, packed by hand into one word:
/// bits 0-111 available, 112-223 escrowed, 224-255 flags (see AccountFlags). Packing by hand
/// rather than through a struct keeps each leg of a settlement to one SLOAD and one SSTORE
/// with no member-by-member masking.
library PackedAccount {
    uint256 internal constant AMOUNT_MAX = type(uint112).max;
    uint256 private constant MASK = type(uint112).max;

    error AccountBalanceOverflow(uint256 value);

    function available(uint256 word) internal pure returns (uint256) {
        return word & MASK;
    }

    function escrowed(uint256 word) internal pure returns (uint256) {
        return (word >> 112) & MASK;
    }

    function flags(uint256 word) internal pure returns (uint32) {
        return uint32(word >> 224);
    }

    /// @dev Reverts if either amount does not fit in 112 bits.
    function pack(uint256 availableAmount, uint256 escrowedAmount, uint32 accountFlags)
        internal
        pure
        returns (uint256)
    {
        if (availableAmount > AMOUNT_MAX) revert AccountBalanceOverflow(availableAmount);
        if (escrowedAmount > AMOUNT_MAX) revert AccountBalanceOverflow(escrowedAmount);
        return availableAmount | (escrowedAmount << 112) | (uint256(accountFlags) << 224);
    }

    function withFlags(uint256 word, uint32 accountFlags) internal pure returns (uint256) {
        return (word & ((1 << 224) - 1)) | (uint256(accountFlags) << 224);
    }
}
