// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice A debtor bank's payment instruction, signed by the bank as EIP-712 typed data.
/// @dev Amounts are in the currency's minor unit (ISO 4217 exponent = token decimals).
/// Customer names, IBANs and addresses never go on chain: only `detailsHash`.
struct Instruction {
    /// @dev The ISO 20022 UETR (a UUID) chosen by the bank, left-aligned in 32 bytes.
    bytes32 id;
    /// @dev Replay nonce, unordered: word `nonce >> 8`, bit `nonce & 0xff` of the bank's bitmap.
    uint256 nonce;
    address debtor;
    address creditor;
    bytes3 sellCurrency;
    uint128 sellAmount;
    bytes3 buyCurrency;
    /// @dev The bank's slippage bound: the creditor receives at least this much.
    uint128 minBuyAmount;
    /// @dev Unix seconds; settlement must happen at or before it, refund by anyone after it.
    uint40 deadline;
    /// @dev Hash of the beneficiary and remittance details kept off chain.
    bytes32 detailsHash;
}

/// @notice What an escrow commits to: the fields of an instruction that settlement and refund
/// need. Settling or refunding resupplies these eight words, not the whole instruction.
struct Terms {
    bytes32 id;
    address debtor;
    address creditor;
    bytes3 sellCurrency;
    uint128 sellAmount;
    bytes3 buyCurrency;
    uint128 minBuyAmount;
    uint40 deadline;
}

/// @notice An FX quote, signed by the oracle's quote key as EIP-712 typed data. A quote is
/// identified by its EIP-712 struct hash (errors and the node call it the quote hash).
struct Quote {
    bytes3 sellCurrency;
    bytes3 buyCurrency;
    /// @dev Units of the buy currency per one unit of the sell currency, 18 decimals.
    uint128 rate;
    /// @dev Fee taken from the sell amount, in basis points, booked to the fee account.
    uint16 feeBps;
    address liquidityProvider;
    /// @dev Unix seconds; the quote prices a settlement at or before it.
    uint40 expiry;
}

/// @notice A compact (EIP-2098) secp256k1 signature: `vs` is `s` with `v - 27` in its top bit.
struct Signature {
    bytes32 r;
    bytes32 vs;
}

struct SignedQuote {
    Quote quote;
    Signature signature;
}

/// @notice What to do with one position of an escrowed batch in `resolveBatch`.
enum Action {
    /// @dev Leave the instruction escrowed.
    Keep,
    /// @dev Settle it against `quotes[quoteIndex]`.
    Settle,
    /// @dev Refund it to the debtor (after its deadline, or by the operator).
    Refund,
    /// @dev The position was settled or refunded earlier; its terms are ignored.
    Resolved
}

struct BatchItem {
    Terms terms;
    Action action;
    uint16 quoteIndex;
}

/// @notice One signed instruction settled by a net cycle without having been escrowed.
struct CycleItem {
    Instruction instruction;
    Signature signature;
    /// @dev The index in the cycle's quotes of the quote that prices it.
    uint16 quoteIndex;
}

/// @notice One instruction already escrowed alone in the caller's `slot` (a review hold, or
/// one sent gross) that joins a net cycle: its escrowed funds pay its own sell leg.
struct EscrowedItem {
    uint256 slot;
    Terms terms;
    /// @dev The index in the cycle's quotes of the quote that prices it.
    uint16 quoteIndex;
}

/// @notice A reference rate as the oracle publishes it.
struct RatePoint {
    bytes3 sellCurrency;
    bytes3 buyCurrency;
    uint128 rate;
}

enum ParticipantKind {
    None,
    Bank,
    LiquidityProvider,
    FeeAccount
}

struct Participant {
    ParticipantKind kind;
    bool active;
    bool frozen;
    /// @dev The 8- or 11-character BIC, ASCII, left-aligned, zero-padded.
    bytes11 bic;
}

/// @notice One participant's balances in one currency, as the views return them. In storage
/// they are one packed word (see `PackedAccount`); `flags` caches the participant's status
/// (see `AccountFlags`) so that a settlement reads one slot per leg and none per party.
struct Account {
    uint112 available;
    uint112 escrowed;
    uint32 flags;
}

struct Currency {
    address token;
    uint8 decimals;
    bool listed;
}

/// @notice A currency pair's reference rate, the decimals of both currencies and the fees
/// accrued on the pair, packed in one slot that every settlement of the pair reads anyway.
/// @dev Fees accrue here (in the sell currency) and `collectFees` moves them to the fee
/// account's balance, as Uniswap v3 accrues protocol fees in the pool: the fee leg then costs
/// no storage access of its own.
struct ReferenceRate {
    uint128 rate;
    uint40 updatedAt;
    uint8 sellDecimals;
    uint8 buyDecimals;
    uint72 feesAccrued;
}

/// @notice Network-wide settings read by every state-changing call, packed in one slot.
struct Config {
    /// @dev The oracle's quote-signing key.
    address quoteSigner;
    /// @dev Largest allowed distance of a quote's rate from the reference rate, basis points.
    uint16 bandBps;
    /// @dev Oldest reference rate a settlement may be checked against, seconds.
    uint32 rateMaxAge;
    bool paused;
    /// @dev Net settlement cycles settled so far; the last one's number.
    uint40 cycles;
}
