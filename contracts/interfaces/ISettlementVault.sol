// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {
    Account,
    BatchItem,
    Config,
    Currency,
    Instruction,
    Participant,
    ParticipantKind,
    RatePoint,
    ReferenceRate,
    Signature,
    SignedQuote,
    Terms
} from "../types/Settlement.sol";

/// @title Corridor settlement vault
/// @notice Holds tokenized deposits of banks and liquidity providers, escrows signed payment
/// instructions and settles them payment-versus-payment: the sell leg to the liquidity
/// provider, the buy leg to the creditor and the fee leg to the fee account, in one
/// transaction, or refunds them to the debtor.
///
/// Escrows live in slots that belong to the account that escrowed them (the node's relayer):
/// a slot holds the commitment to one batch of instructions (the hash of an instruction's
/// `Terms` for a batch of one, else the hash of the packed terms hashes). Settling or refunding
/// an instruction zeroes its position; when no position is left the slot is free for the next
/// batch. A signed instruction is escrowed at most once (its nonce is spent) and an escrowed
/// instruction is settled or refunded at most once (its position is zeroed).
///
/// Authority comes from signatures, not from who sends: the debtor bank signs each
/// instruction and the oracle's quote-signing key signs each quote. The sender (the node's
/// relayer) only pays gas and owns its escrow slots.
///
/// Every state change emits an event carrying the figures an auditor needs to rebuild every
/// balance without reading storage.
interface ISettlementVault {
    // ------------------------------------------------------------------ events

    event CurrencyListed(bytes3 indexed currency, address token, uint8 decimals);
    event ParticipantRegistered(address indexed participant, ParticipantKind kind, bytes11 bic);
    event ParticipantCurrencyEnabled(address indexed participant, bytes3 indexed currency);
    event ParticipantFrozenSet(address indexed participant, bool frozen, address by);
    event ParticipantActiveSet(address indexed participant, bool active, address by);
    event PausedSet(bool paused, address by);
    event RiskParametersSet(uint16 bandBps, uint32 rateMaxAge);
    event QuoteSignerSet(address quoteSigner);
    event ReferenceRatePublished(bytes3 indexed sellCurrency, bytes3 indexed buyCurrency, uint128 rate);
    event NoncesInvalidated(address indexed owner, uint256 word, uint256 mask);

    /// @notice `amount` of `currency` tokens from `from` were credited to `participant`'s available.
    event Deposited(address indexed participant, bytes3 indexed currency, uint256 amount, address from);
    /// @notice `amount` was debited from `participant`'s available and sent to `to`.
    event Withdrawn(address indexed participant, bytes3 indexed currency, uint256 amount, address to);

    /// @notice The debtor's `sellAmount` moved from available to escrowed. The escrow slot, the
    /// nonce, the creditor, the buy side and the deadline are in the transaction's calldata,
    /// under the debtor's signature.
    event InstructionEscrowed(bytes32 indexed id, address indexed debtor, bytes3 sellCurrency, uint128 sellAmount);

    /// @notice Settled payment-versus-payment: the debtor's escrowed sell amount left, of which
    /// `fee` accrued to the fee account (on the pair, see `collectFees`) and the rest went to
    /// `liquidityProvider`; the liquidity provider paid `buyAmount` of `buyCurrency` to
    /// `creditor`. The signed quote (rate, fee rate, expiry) is in the transaction's calldata.
    event InstructionSettled(
        bytes32 indexed id,
        address indexed liquidityProvider,
        address creditor,
        bytes3 buyCurrency,
        uint128 buyAmount,
        uint128 fee
    );

    /// @notice Fees accrued on the pair moved to the fee account's available balance in
    /// `sellCurrency`.
    event FeesCollected(bytes3 indexed sellCurrency, bytes3 indexed buyCurrency, uint256 amount);

    /// @notice The escrowed sell amount went back to the debtor's available. `by` is the caller:
    /// anyone after the deadline, an operator before it.
    event InstructionRefunded(
        bytes32 indexed id, address indexed debtor, bytes3 sellCurrency, uint128 amount, address by
    );

    // ------------------------------------------------------------------ errors

    error VaultPaused();
    error VaultZeroAddress();
    error VaultParameterOutOfRange(uint256 value, uint256 max);

    error CurrencyUnknown(bytes3 currency);
    error CurrencyAlreadyListed(bytes3 currency);
    error CurrencyDecimalsUnsupported(bytes3 currency, uint8 decimals);
    error CurrencyLimitReached(uint256 max);

    error ParticipantAlreadyRegistered(address participant);
    error ParticipantUnknown(address participant);
    error ParticipantKindInvalid(ParticipantKind kind);
    error ParticipantBicInvalid(bytes11 bic);
    /// @notice The participant cannot act in `currency` here: not enabled for it, inactive,
    /// frozen or of the wrong kind. `flags` are its account flags (see AccountFlags).
    error ParticipantNotUsable(address participant, bytes3 currency, uint32 flags);

    error InsufficientAvailable(address participant, bytes3 currency, uint256 available, uint256 needed);

    /// @notice A signature's `s` is in the upper half of the curve order (EIP-2 malleability).
    error SignatureHighS(bytes32 s);
    /// @notice A signature recovers to no address.
    error SignatureInvalid();

    error InstructionAmountZero(bytes32 id);
    error InstructionSameCurrency(bytes32 id, bytes3 currency);
    error InstructionExpired(bytes32 id, uint256 deadline, uint256 time);
    error InstructionSignerMismatch(bytes32 id, address debtor, address signer);
    error InstructionNonceUsed(address debtor, uint256 nonce);
    error BuyAmountBelowMinimum(bytes32 id, uint256 buyAmount, uint256 minBuyAmount);
    error RefundNotAllowed(bytes32 id, uint256 deadline, uint256 time, address caller);

    /// @dev Quote errors name the quote by its EIP-712 struct hash.
    error QuoteExpired(bytes32 quoteHash, uint256 expiry, uint256 time);
    error QuoteSignerInvalid(bytes32 quoteHash, address signer);
    error QuotePairMismatch(bytes32 instructionId, bytes32 quoteHash);
    error QuoteFeeTooHigh(bytes32 quoteHash, uint256 feeBps);

    error ReferenceRateInvalid(bytes3 sellCurrency, bytes3 buyCurrency, uint256 rate);
    error ReferenceRateMissing(bytes3 sellCurrency, bytes3 buyCurrency);
    error ReferenceRateStale(bytes3 sellCurrency, bytes3 buyCurrency, uint256 updatedAt, uint256 rateMaxAge);
    error RateOutOfBand(bytes3 sellCurrency, bytes3 buyCurrency, uint256 rate, uint256 referenceRate, uint256 bandBps);

    error SlotOccupied(address escrower, uint256 slot);
    /// @notice The instructions given do not match the slot's commitment (`stored`; 0 or 1 is an
    /// empty slot).
    error SlotMismatch(address escrower, uint256 slot, bytes32 stored, bytes32 computed);
    error BatchEmpty();
    error BatchTooLarge(uint256 size, uint256 max);
    error BatchLengthMismatch(uint256 instructions, uint256 signatures);
    error BatchQuoteIndexOutOfRange(uint256 index, uint256 quotes);
    error SettleNotByEscrower(address escrower, address caller);

    // ------------------------------------------------------------------ administration

    /// @notice List a currency whose settlement asset is `token`; its decimals must be the
    /// ISO 4217 exponent (at most 18). Enables the fee account for it. Admin only.
    function listCurrency(bytes3 currency, address token) external;

    /// @notice Register a bank or liquidity provider and enable it for `currencies`. Operator only.
    function registerParticipant(address participant, ParticipantKind kind, bytes11 bic, bytes3[] calldata currencies)
        external;

    /// @notice Enable a registered participant for one more listed currency. Operator only.
    function enableCurrency(address participant, bytes3 currency) external;

    /// @notice Freeze or unfreeze a participant: a frozen one can neither move nor receive
    /// funds. Operator only.
    function setFrozen(address participant, bool frozen) external;

    /// @notice Deactivate or reactivate a participant: an inactive one cannot deposit, escrow,
    /// settle or receive, but can still withdraw. Operator only.
    function setActive(address participant, bool active) external;

    /// @notice Pause or resume the whole network: while paused nothing moves. Operator only.
    function setPaused(bool paused) external;

    /// @notice Set the allowed band around the reference rate and its maximum age. Admin only.
    function setRiskParameters(uint16 bandBps, uint32 rateMaxAge) external;

    /// @notice Set the oracle's quote-signing key. Admin only.
    function setQuoteSigner(address quoteSigner) external;

    /// @notice Publish reference rates (one transaction, any number of pairs up to a bound).
    /// Oracle only.
    function publishReferenceRates(RatePoint[] calldata points) external;

    // ------------------------------------------------------------------ participants

    /// @notice Pull `amount` tokens of `currency` from the caller and credit `participant`.
    function deposit(address participant, bytes3 currency, uint256 amount) external;

    /// @notice Send `amount` of the caller's available `currency` to `to`.
    function withdraw(bytes3 currency, uint256 amount, address to) external;

    /// @notice Spend the caller's nonces in `word` whose bits are set in `mask`, so that
    /// instructions signed with them can never be escrowed.
    function invalidateNonces(uint256 word, uint256 mask) external;

    /// @notice Move the fees accrued on each pair (`sellCurrency`, `buyCurrency`) to the fee
    /// account's available balance. Anyone may call it: fees only ever go to the fee account.
    function collectFees(bytes3[] calldata sellCurrencies, bytes3[] calldata buyCurrencies) external;

    // ------------------------------------------------------------------ settlement

    /// @notice Escrow one signed instruction into the caller's `slot`.
    function escrow(uint256 slot, Instruction calldata instruction, Signature calldata signature) external;

    /// @notice Escrow a batch of signed instructions into the caller's `slot`, committed as one.
    function escrowBatch(uint256 slot, Instruction[] calldata instructions, Signature[] calldata signatures) external;

    /// @notice Settle the instruction that alone fills the caller's `slot`, given its terms.
    function settle(uint256 slot, Terms calldata terms, SignedQuote calldata quote) external;

    /// @notice Refund the instruction that alone fills (`escrower`, `slot`), given its terms:
    /// anyone after its deadline, an operator at any time.
    function refund(address escrower, uint256 slot, Terms calldata terms) external;

    /// @notice Settle, refund or keep each position of the batch in (`escrower`, `slot`). Every
    /// position must be given, in order. Settling is for the escrower only; refunding as in
    /// `refund`. The batch's movements net to zero per currency or the call reverts.
    function resolveBatch(address escrower, uint256 slot, BatchItem[] calldata items, SignedQuote[] calldata quotes)
        external;

    // ------------------------------------------------------------------ views

    function config() external view returns (Config memory);
    function feeAccount() external view returns (address);
    function accountOf(address participant, bytes3 currency) external view returns (Account memory);
    function participantOf(address participant) external view returns (Participant memory);
    function currencyOf(bytes3 currency) external view returns (Currency memory);
    function currencies() external view returns (bytes3[] memory);
    function referenceRate(bytes3 sellCurrency, bytes3 buyCurrency) external view returns (ReferenceRate memory);
    function slotRoot(address escrower, uint256 slot) external view returns (bytes32);
    function nonceBitmap(address owner, uint256 word) external view returns (uint256);
    function isNonceUsed(address owner, uint256 nonce) external view returns (bool);
    function instructionDigest(Instruction calldata instruction) external view returns (bytes32);
    function termsHash(Terms calldata terms) external pure returns (bytes32);
    function quoteDigest(SignedQuote calldata quote) external view returns (bytes32);

    /// @notice The settlement's conversion, for clients that want the contract's own figures.
    function previewConversion(uint256 sellAmount, uint256 rate, uint256 feeBps, uint8 sellDecimals, uint8 buyDecimals)
        external
        pure
        returns (uint256 buyAmount, uint256 fee);
}
