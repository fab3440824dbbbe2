// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice Bits of `Account.flags`: a participant's status, mirrored into every currency slot
/// it is enabled for.
library AccountFlags {
    uint32 internal constant ENABLED = 1;
    uint32 internal constant FROZEN = 2;
    uint32 internal constant INACTIVE = 4;
    uint32 internal constant BANK = 8;
    uint32 internal constant LIQUIDITY_PROVIDER = 16;
    uint32 internal constant FEE_ACCOUNT = 32;

    /// @dev The status bits that the participant record owns (kind bits never change).
    uint32 internal constant STATUS = FROZEN | INACTIVE;

    /// @notice Enabled for the currency, active and not frozen, and of the given kind.
    function usableAs(uint32 flags, uint32 kind) internal pure returns (bool) {
        return flags & (ENABLED | FROZEN | INACTIVE | kind) == ENABLED | kind;
    }
}
