// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice A net cycle's movements summed per account (participant, currency and the kind the
/// account must be usable as), so that each account is booked once with its net. The sums live
/// in memory; the index of each account's entry lives in transient storage (EIP-1153) so that
/// finding it costs one `tload` however many accounts the cycle touches.
/// @dev An entry's key packs the participant (bits 0-159), the currency (160-183) and the kind
/// flag (184-215). `clear` must run before the call returns, so that a later call in the same
/// transaction starts from empty indexes.
library CycleLegs {
    /// @dev keccak256("corridor.cycle-leg-index")
    uint256 private constant INDEX_BASE = 0xcd8974d7221229d67c1dffa5bf640e864c040bec32a102bdce3b9e89ea1ff404;

    struct Legs {
        uint256[] keys;
        int256[] sums;
        uint256 count;
    }

    function create(uint256 capacity) internal pure returns (Legs memory legs) {
        legs.keys = new uint256[](capacity);
        legs.sums = new int256[](capacity);
    }

    /// @notice Adds `amount` (positive: a credit) to the account's sum.
    function add(Legs memory legs, address participant, bytes3 currency, uint32 kind, int256 amount) internal {
        uint256 key = uint256(uint160(participant)) | uint256(uint24(currency)) << 160 | uint256(kind) << 184;
        uint256 slot = INDEX_BASE ^ key;
        uint256[] memory keys = legs.keys;
        int256[] memory sums = legs.sums;
        assembly ("memory-safe") {
            let position := tload(slot)
            if iszero(position) {
                // The caller sizes the arrays for every leg it can add, so a new entry always
                // fits: `position` stays within their length.
                position := add(mload(add(legs, 0x40)), 1)
                mstore(add(legs, 0x40), position)
                mstore(add(keys, shl(5, position)), key)
                tstore(slot, position)
            }
            // Each amount is below 2**129 in magnitude and a cycle adds at most a few hundred.
            let cell := add(sums, shl(5, position))
            mstore(cell, add(mload(cell), amount))
        }
    }

    /// @notice The `i`-th account touched and its net movement.
    function at(Legs memory legs, uint256 i)
        internal
        pure
        returns (address participant, bytes3 currency, uint32 kind, int256 sum)
    {
        uint256 key = legs.keys[i];
        participant = address(uint160(key));
        currency = bytes3(uint24(key >> 160));
        kind = uint32(key >> 184);
        sum = legs.sums[i];
    }

    /// @notice Forgets the transient indexes.
    function clear(Legs memory legs) internal {
        for (uint256 i; i < legs.count; ++i) {
            uint256 slot = INDEX_BASE ^ legs.keys[i];
            assembly ("memory-safe") {
                tstore(slot, 0)
            }
        }
    }
}
