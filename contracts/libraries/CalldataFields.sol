// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Instruction, Quote, Terms} from "../types/Settlement.sol";

/// @notice The settlement structs' fields read straight from calldata, each word read once and
/// masked to its type (as Uniswap v4's CalldataDecoder does). Signatures and commitments are
/// over these very words, so what is read here is what was signed and escrowed.
library CalldataFields {
    /// @notice An instruction's fields that escrow checks and books.
    function escrowFields(Instruction calldata ins)
        internal
        pure
        returns (
            bytes32 id,
            uint256 nonce,
            address debtor,
            bytes3 sellCurrency,
            uint256 sellAmount,
            bytes3 buyCurrency,
            uint256 deadline
        )
    {
        assembly ("memory-safe") {
            id := calldataload(ins)
            nonce := calldataload(add(ins, 0x20))
            debtor := and(calldataload(add(ins, 0x40)), 0xffffffffffffffffffffffffffffffffffffffff)
            sellCurrency := and(calldataload(add(ins, 0x80)), shl(232, 0xffffff))
            sellAmount := and(calldataload(add(ins, 0xa0)), 0xffffffffffffffffffffffffffffffff)
            buyCurrency := and(calldataload(add(ins, 0xc0)), shl(232, 0xffffff))
            deadline := and(calldataload(add(ins, 0x100)), 0xffffffffff)
        }
    }

    /// @notice An instruction's creditor and the bank's minimum, which a net cycle books against.
    function creditorFields(Instruction calldata ins) internal pure returns (address creditor, uint256 minBuyAmount) {
        assembly ("memory-safe") {
            creditor := and(calldataload(add(ins, 0x60)), 0xffffffffffffffffffffffffffffffffffffffff)
            minBuyAmount := and(calldataload(add(ins, 0xe0)), 0xffffffffffffffffffffffffffffffff)
        }
    }

    /// @notice The terms' fields that settlement checks before it prices.
    function settleFields(Terms calldata t)
        internal
        pure
        returns (bytes32 id, bytes3 sellCurrency, uint256 sellAmount, bytes3 buyCurrency, uint256 deadline)
    {
        assembly ("memory-safe") {
            id := calldataload(t)
            sellCurrency := and(calldataload(add(t, 0x60)), shl(232, 0xffffff))
            sellAmount := and(calldataload(add(t, 0x80)), 0xffffffffffffffffffffffffffffffff)
            buyCurrency := and(calldataload(add(t, 0xa0)), shl(232, 0xffffff))
            deadline := and(calldataload(add(t, 0xe0)), 0xffffffffff)
        }
    }

    /// @notice The terms' parties and the bank's minimum, which settlement books against.
    function parties(Terms calldata t) internal pure returns (address debtor, address creditor, uint256 minBuyAmount) {
        assembly ("memory-safe") {
            debtor := and(calldataload(add(t, 0x20)), 0xffffffffffffffffffffffffffffffffffffffff)
            creditor := and(calldataload(add(t, 0x40)), 0xffffffffffffffffffffffffffffffffffffffff)
            minBuyAmount := and(calldataload(add(t, 0xc0)), 0xffffffffffffffffffffffffffffffff)
        }
    }

    /// @notice A quote's fields.
    function quoteFields(Quote calldata quote)
        internal
        pure
        returns (bytes3 sellCurrency, bytes3 buyCurrency, uint256 rate, uint256 feeBps, address lp, uint256 expiry)
    {
        assembly ("memory-safe") {
            sellCurrency := and(calldataload(quote), shl(232, 0xffffff))
            buyCurrency := and(calldataload(add(quote, 0x20)), shl(232, 0xffffff))
            rate := and(calldataload(add(quote, 0x40)), 0xffffffffffffffffffffffffffffffff)
            feeBps := and(calldataload(add(quote, 0x60)), 0xffff)
            lp := and(calldataload(add(quote, 0x80)), 0xffffffffffffffffffffffffffffffffffffffff)
            expiry := and(calldataload(add(quote, 0xa0)), 0xffffffffff)
        }
    }
}
