// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Instruction, Quote, Terms} from "../types/Settlement.sol";

/// @notice EIP-712 struct hashes of the signed types. The type strings are the contract with
/// every signer: `settlement/eip712.py` builds the same ones.
library TypedData {
    bytes32 internal constant INSTRUCTION_TYPEHASH = keccak256(
        "Instruction(bytes32 id,uint256 nonce,address debtor,address creditor,bytes3 sellCurrency,"
        "uint128 sellAmount,bytes3 buyCurrency,uint128 minBuyAmount,uint40 deadline,bytes32 detailsHash)"
    );

    bytes32 internal constant QUOTE_TYPEHASH = keccak256(
        "Quote(bytes3 sellCurrency,bytes3 buyCurrency,uint128 rate,uint16 feeBps,address liquidityProvider,"
        "uint40 expiry)"
    );

    /// @dev Tags the escrow commitment so that it can never equal another hash of the same words.
    bytes32 internal constant TERMS_TYPEHASH = keccak256(
        "Terms(bytes32 id,address debtor,address creditor,bytes3 sellCurrency,uint128 sellAmount,"
        "bytes3 buyCurrency,uint128 minBuyAmount,uint40 deadline)"
    );

    /// @dev Every field is a static 32-byte word in calldata, so the struct hash is the hash of
    /// the typehash followed by the calldata words, copied in one go.
    function hash(Instruction calldata instruction) internal pure returns (bytes32 digest) {
        bytes32 typehash = INSTRUCTION_TYPEHASH;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, typehash)
            calldatacopy(add(ptr, 0x20), instruction, 0x140)
            digest := keccak256(ptr, 0x160)
        }
    }

    /// @notice The escrow commitment (leaf) of an instruction: its terms, words 0 and 2 to 8.
    function termsHash(Instruction calldata instruction) internal pure returns (bytes32 digest) {
        bytes32 typehash = TERMS_TYPEHASH;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, typehash)
            mstore(add(ptr, 0x20), calldataload(instruction))
            calldatacopy(add(ptr, 0x40), add(instruction, 0x40), 0xe0)
            digest := keccak256(ptr, 0x120)
        }
    }

    /// @notice The escrow commitment (leaf) of resupplied terms; equals `termsHash` of the
    /// instruction they came from.
    function hash(Terms calldata terms) internal pure returns (bytes32 digest) {
        bytes32 typehash = TERMS_TYPEHASH;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, typehash)
            calldatacopy(add(ptr, 0x20), terms, 0x100)
            digest := keccak256(ptr, 0x120)
        }
    }

    function hash(Quote calldata quote) internal pure returns (bytes32 digest) {
        bytes32 typehash = QUOTE_TYPEHASH;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, typehash)
            calldatacopy(add(ptr, 0x20), quote, 0xc0)
            digest := keccak256(ptr, 0xe0)
        }
    }
}
