// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {
    Account,
    BatchItem,
    Config,
    Currency,
    CycleItem,
    EscrowedItem,
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
/// A net settlement cycle (`settleCycle`) settles signed instructions that were never
/// escrowed, each checked as escrow and settlement check it, in one transaction: the movements
/// are summed per account and each account is booked once with its net, which its available
/// balance must cover. Instructions escrowed alone may join a cycle.
///
/// Every call that moves balances ends with each currency's movements summing to zero (fees,
/// and tokens in and out, included), or it reverts with `CurrencyNotNetted`.
///
/// Authority comes from signatures, not from who sends: the debtor bank signs each
/// instruction and the oracle's quote-signing key signs each quote. The sender (the node's
/// relayer) only pays gas and owns its escrow slots.
///
/// Every state change emits an event carrying the figures an auditor needs to rebuild every
/// balance without reading storage.
interface ISettlementVault {
    // ------------------------------------------------------------------ events

    /// @notice A currency was listed: its settlement asset and decimals, and the fee account
    /// enabled for it.
    /// @param currency The ISO 4217 code.
    /// @param token The ERC-20 settlement asset of the currency.
    /// @param decimals The token's decimals, equal to the currency's ISO 4217 exponent.
    event CurrencyListed(bytes3 indexed currency, address token, uint8 decimals);

    /// @notice A participant was registered.
    /// @param participant Its address (the key that signs its instructions, for a bank).
    /// @param kind Bank, liquidity provider or fee account.
    /// @param bic Its BIC (ISO 9362), right-padded with zero bytes to 11.
    event ParticipantRegistered(address indexed participant, ParticipantKind kind, bytes11 bic);

    /// @notice A participant may now hold, send and receive `currency`.
    /// @param participant The registered participant.
    /// @param currency A listed currency.
    event ParticipantCurrencyEnabled(address indexed participant, bytes3 indexed currency);

    /// @notice A participant was frozen or unfrozen.
    /// @param participant The participant.
    /// @param frozen True when it can neither move nor receive funds from now on.
    /// @param by The operator who did it.
    event ParticipantFrozenSet(address indexed participant, bool frozen, address by);

    /// @notice A participant was deactivated or reactivated.
    /// @param participant The participant.
    /// @param active False when it can no longer deposit, escrow, settle or receive (it can withdraw).
    /// @param by The operator who did it.
    event ParticipantActiveSet(address indexed participant, bool active, address by);

    /// @notice The network was paused or resumed.
    /// @param paused True when nothing moves from now on.
    /// @param by The operator who did it.
    event PausedSet(bool paused, address by);

    /// @notice The rate band and the reference rate's maximum age were set.
    /// @param bandBps How far, in basis points, a quote's rate may lie from the reference rate.
    /// @param rateMaxAge How old, in seconds, the reference rate may be when a quote is checked against it.
    event RiskParametersSet(uint16 bandBps, uint32 rateMaxAge);

    /// @notice The oracle's quote-signing key was set.
    /// @param quoteSigner The address whose signature a quote must carry from now on.
    event QuoteSignerSet(address quoteSigner);

    /// @notice The oracle published a reference rate.
    /// @param sellCurrency The pair's sell currency.
    /// @param buyCurrency The pair's buy currency.
    /// @param rate Units of the buy currency per unit of the sell currency, 18 decimals.
    event ReferenceRatePublished(bytes3 indexed sellCurrency, bytes3 indexed buyCurrency, uint128 rate);

    /// @notice A participant spent some of its nonces without using them.
    /// @param owner The participant whose nonces they are.
    /// @param word The index of the 256-nonce word (nonce >> 8).
    /// @param mask The bits of the word spent by this call.
    event NoncesInvalidated(address indexed owner, uint256 word, uint256 mask);

    /// @notice `amount` of `currency` tokens from `from` were credited to `participant`'s available.
    /// @param participant The participant credited.
    /// @param currency The currency deposited.
    /// @param amount Minor units.
    /// @param from Who paid the tokens in (the caller).
    event Deposited(address indexed participant, bytes3 indexed currency, uint256 amount, address from);

    /// @notice `amount` was debited from `participant`'s available and sent to `to`.
    /// @param participant The participant debited (the caller).
    /// @param currency The currency withdrawn.
    /// @param amount Minor units.
    /// @param to Who received the tokens.
    event Withdrawn(address indexed participant, bytes3 indexed currency, uint256 amount, address to);

    /// @notice The debtor's `sellAmount` moved from available to escrowed. The escrow slot, the
    /// nonce, the creditor, the buy side and the deadline are in the transaction's calldata,
    /// under the debtor's signature.
    /// @param id The instruction's id (its UETR).
    /// @param debtor The debtor bank.
    /// @param sellCurrency The currency escrowed.
    /// @param sellAmount Minor units, the fee included.
    event InstructionEscrowed(bytes32 indexed id, address indexed debtor, bytes3 sellCurrency, uint128 sellAmount);

    /// @notice Settled payment-versus-payment: the debtor's escrowed sell amount left, of which
    /// `fee` accrued to the fee account (on the pair, see `collectFees`) and the rest went to
    /// `liquidityProvider`; the liquidity provider paid `buyAmount` of `buyCurrency` to
    /// `creditor`. The signed quote (rate, fee rate, expiry) is in the transaction's calldata.
    /// @param id The instruction's id (its UETR).
    /// @param liquidityProvider The quote's liquidity provider: paid the sell amount less the fee.
    /// @param creditor The creditor bank: paid `buyAmount`.
    /// @param buyCurrency The currency the creditor received.
    /// @param buyAmount Minor units of `buyCurrency`, at least the instruction's minimum.
    /// @param fee Minor units of the sell currency, accrued to the fee account.
    event InstructionSettled(
        bytes32 indexed id,
        address indexed liquidityProvider,
        address creditor,
        bytes3 buyCurrency,
        uint128 buyAmount,
        uint128 fee
    );

    /// @notice Settled by net settlement cycle `cycle` without an escrow: the debtor paid
    /// `sellAmount`, of which `fee` accrued to the fee account (on the pair, see `collectFees`)
    /// and the rest went to `liquidityProvider`; the liquidity provider paid `buyAmount` to
    /// `creditor`. Each account was booked with the cycle's net (see `CycleSettled`); these are
    /// the instruction's gross figures. The nonce, the minimum, the deadline, the details hash
    /// and the signed quote are in the transaction's calldata, under their signatures.
    /// @param id The instruction's id (its UETR).
    /// @param cycle The cycle's number, counted from 1.
    /// @param debtor The debtor bank: paid `sellAmount` of `sellCurrency`.
    /// @param creditor The creditor bank: paid `buyAmount` of `buyCurrency`.
    /// @param liquidityProvider The quote's liquidity provider: paid the sell amount less the fee.
    /// @param sellCurrency The currency the debtor paid.
    /// @param sellAmount Minor units, the fee included.
    /// @param buyCurrency The currency the creditor received.
    /// @param buyAmount Minor units of `buyCurrency`, at least the instruction's minimum.
    /// @param fee Minor units of the sell currency, accrued to the fee account.
    event InstructionNetted(
        bytes32 indexed id,
        uint256 cycle,
        address debtor,
        address creditor,
        address liquidityProvider,
        bytes3 sellCurrency,
        uint128 sellAmount,
        bytes3 buyCurrency,
        uint128 buyAmount,
        uint128 fee
    );

    /// @notice Net settlement cycle `cycle` settled `instructions` instructions (those netted and
    /// those that joined from escrow). Per currency: `gross` is what the instructions moved
    /// (their sell amounts and buy amounts in it) and `net` the sum of the net debits booked on
    /// available balances, the liquidity the cycle used.
    /// @param cycle The cycle's number, counted from 1.
    /// @param instructions How many instructions the cycle settled.
    /// @param currencies The currencies the cycle moved.
    /// @param gross Per currency, minor units moved gross.
    /// @param net Per currency, minor units of net debits booked.
    event CycleSettled(
        uint256 indexed cycle, uint256 instructions, bytes3[] currencies, uint256[] gross, uint256[] net
    );

    /// @notice Fees accrued on the pair moved to the fee account's available balance in
    /// `sellCurrency`.
    /// @param sellCurrency The currency the fees are in.
    /// @param buyCurrency The pair's buy currency.
    /// @param amount Minor units of `sellCurrency`.
    event FeesCollected(bytes3 indexed sellCurrency, bytes3 indexed buyCurrency, uint256 amount);

    /// @notice The escrowed sell amount went back to the debtor's available. `by` is the caller:
    /// anyone after the deadline, an operator before it.
    /// @param id The instruction's id (its UETR).
    /// @param debtor The debtor bank, credited.
    /// @param sellCurrency The currency refunded.
    /// @param amount Minor units: the whole escrowed sell amount.
    /// @param by Who refunded it.
    event InstructionRefunded(
        bytes32 indexed id, address indexed debtor, bytes3 sellCurrency, uint128 amount, address by
    );

    // ------------------------------------------------------------------ errors

    /// @notice The network is paused: nothing moves.
    error VaultPaused();

    /// @notice The call's movements in `currency` do not sum to zero: the books would not balance.
    /// @param currency The first listed currency found out of balance.
    /// @param delta The sum of its movements (positive: the vault would owe more than it holds).
    error CurrencyNotNetted(bytes3 currency, int256 delta);

    /// @notice An address that must be set was zero.
    error VaultZeroAddress();

    /// @notice A parameter is above what the vault takes.
    /// @param value The value given.
    /// @param max The largest value taken.
    error VaultParameterOutOfRange(uint256 value, uint256 max);

    /// @notice The currency is not listed.
    /// @param currency The ISO 4217 code given.
    error CurrencyUnknown(bytes3 currency);

    /// @notice The currency is listed already.
    /// @param currency The ISO 4217 code given.
    error CurrencyAlreadyListed(bytes3 currency);

    /// @notice The token's decimals are more than the vault takes (18).
    /// @param currency The currency being listed.
    /// @param decimals The token's decimals.
    error CurrencyDecimalsUnsupported(bytes3 currency, uint8 decimals);

    /// @notice As many currencies are listed as the vault takes.
    /// @param max The number of currencies the vault takes.
    error CurrencyLimitReached(uint256 max);

    /// @notice The address is registered already.
    /// @param participant The address given.
    error ParticipantAlreadyRegistered(address participant);

    /// @notice The address is not a registered participant.
    /// @param participant The address given.
    error ParticipantUnknown(address participant);

    /// @notice The kind is not one a participant can be registered as.
    /// @param kind The kind given.
    error ParticipantKindInvalid(ParticipantKind kind);

    /// @notice The BIC is not upper-case letters and digits, right-padded with zero bytes.
    /// @param bic The BIC given.
    error ParticipantBicInvalid(bytes11 bic);

    /// @notice The participant cannot act in `currency` here: not enabled for it, inactive,
    /// frozen or of the wrong kind.
    /// @param participant The participant.
    /// @param currency The currency it would act in.
    /// @param flags Its account flags in that currency (see AccountFlags).
    error ParticipantNotUsable(address participant, bytes3 currency, uint32 flags);

    /// @notice The participant's available balance does not cover the movement.
    /// @param participant The participant to be debited.
    /// @param currency The currency.
    /// @param available Its available balance, minor units.
    /// @param needed The debit, minor units.
    error InsufficientAvailable(address participant, bytes3 currency, uint256 available, uint256 needed);

    /// @notice A signature's `s` is in the upper half of the curve order (EIP-2 malleability).
    /// @param s The signature's `s`.
    error SignatureHighS(bytes32 s);

    /// @notice A signature recovers to no address.
    error SignatureInvalid();

    /// @notice The instruction sells nothing.
    /// @param id The instruction's id.
    error InstructionAmountZero(bytes32 id);

    /// @notice The instruction sells and buys the same currency.
    /// @param id The instruction's id.
    /// @param currency The currency on both sides.
    error InstructionSameCurrency(bytes32 id, bytes3 currency);

    /// @notice The instruction's deadline has passed.
    /// @param id The instruction's id.
    /// @param deadline Its deadline, unix seconds.
    /// @param time The block's time.
    error InstructionExpired(bytes32 id, uint256 deadline, uint256 time);

    /// @notice The instruction is not signed by its debtor.
    /// @param id The instruction's id.
    /// @param debtor The debtor it names.
    /// @param signer The address its signature recovers to.
    error InstructionSignerMismatch(bytes32 id, address debtor, address signer);

    /// @notice The debtor's nonce is spent.
    /// @param debtor The debtor.
    /// @param nonce The nonce the instruction carries.
    error InstructionNonceUsed(address debtor, uint256 nonce);

    /// @notice At the quoted rate the creditor would receive less than the bank's minimum.
    /// @param id The instruction's id.
    /// @param buyAmount What the conversion gives, minor units of the buy currency.
    /// @param minBuyAmount The instruction's minimum.
    error BuyAmountBelowMinimum(bytes32 id, uint256 buyAmount, uint256 minBuyAmount);

    /// @notice Only an operator may refund before the deadline.
    /// @param id The instruction's id.
    /// @param deadline Its deadline, unix seconds.
    /// @param time The block's time.
    /// @param caller Who asked for the refund.
    error RefundNotAllowed(bytes32 id, uint256 deadline, uint256 time, address caller);

    /// @notice The quote has expired. Quote errors name the quote by its EIP-712 struct hash.
    /// @param quoteHash The quote's struct hash.
    /// @param expiry Its expiry, unix seconds.
    /// @param time The block's time.
    error QuoteExpired(bytes32 quoteHash, uint256 expiry, uint256 time);

    /// @notice The quote is not signed by the oracle's quote-signing key.
    /// @param quoteHash The quote's struct hash.
    /// @param signer The address its signature recovers to.
    error QuoteSignerInvalid(bytes32 quoteHash, address signer);

    /// @notice The quote is for another pair than the instruction's.
    /// @param instructionId The instruction's id.
    /// @param quoteHash The quote's struct hash.
    error QuotePairMismatch(bytes32 instructionId, bytes32 quoteHash);

    /// @notice The quote's fee is above 100 %.
    /// @param quoteHash The quote's struct hash.
    /// @param feeBps Its fee, basis points.
    error QuoteFeeTooHigh(bytes32 quoteHash, uint256 feeBps);

    /// @notice A published reference rate is zero, or its pair has one currency twice.
    /// @param sellCurrency The pair's sell currency.
    /// @param buyCurrency The pair's buy currency.
    /// @param rate The rate given, 18 decimals.
    error ReferenceRateInvalid(bytes3 sellCurrency, bytes3 buyCurrency, uint256 rate);

    /// @notice No reference rate was published for the pair.
    /// @param sellCurrency The pair's sell currency.
    /// @param buyCurrency The pair's buy currency.
    error ReferenceRateMissing(bytes3 sellCurrency, bytes3 buyCurrency);

    /// @notice The pair's reference rate is older than the vault takes.
    /// @param sellCurrency The pair's sell currency.
    /// @param buyCurrency The pair's buy currency.
    /// @param updatedAt When it was published, unix seconds.
    /// @param rateMaxAge The largest age taken, seconds.
    error ReferenceRateStale(bytes3 sellCurrency, bytes3 buyCurrency, uint256 updatedAt, uint256 rateMaxAge);

    /// @notice The quote's rate lies outside the band around the reference rate.
    /// @param sellCurrency The pair's sell currency.
    /// @param buyCurrency The pair's buy currency.
    /// @param rate The quote's rate, 18 decimals.
    /// @param referenceRate The reference rate, 18 decimals.
    /// @param bandBps The band, basis points either side.
    error RateOutOfBand(bytes3 sellCurrency, bytes3 buyCurrency, uint256 rate, uint256 referenceRate, uint256 bandBps);

    /// @notice The escrower's slot holds another batch.
    /// @param escrower The account that owns the slot.
    /// @param slot The slot.
    error SlotOccupied(address escrower, uint256 slot);

    /// @notice The instructions given do not match the slot's commitment.
    /// @param escrower The account that owns the slot.
    /// @param slot The slot.
    /// @param stored The slot's commitment (0 or 1 is an empty slot).
    /// @param computed The commitment of the instructions given.
    error SlotMismatch(address escrower, uint256 slot, bytes32 stored, bytes32 computed);

    /// @notice The batch has no instruction.
    error BatchEmpty();

    /// @notice The batch (of instructions, or of reference rates) is larger than the vault takes.
    /// @param size The batch's size.
    /// @param max The largest batch taken.
    error BatchTooLarge(uint256 size, uint256 max);

    /// @notice Instructions and signatures differ in number.
    /// @param instructions The number of instructions.
    /// @param signatures The number of signatures.
    error BatchLengthMismatch(uint256 instructions, uint256 signatures);

    /// @notice A batch item names a quote the call does not carry.
    /// @param index The quote index the item names.
    /// @param quotes The number of quotes given.
    error BatchQuoteIndexOutOfRange(uint256 index, uint256 quotes);

    /// @notice Only the account that escrowed a batch may settle it.
    /// @param escrower The account that owns the slot.
    /// @param caller Who tried to settle.
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

    /// @notice Settle a net cycle: each of `items` (signed, never escrowed) is checked as
    /// `escrow` and `settle` check it and priced at `quotes[quoteIndex]`; each of `escrowed`
    /// (alone in the caller's slot) settles from its escrow. Movements are summed per account and
    /// each account is booked once with its net, which its available balance must cover, or the
    /// whole cycle reverts with `InsufficientAvailable` naming the account and its net debit.
    function settleCycle(CycleItem[] calldata items, EscrowedItem[] calldata escrowed, SignedQuote[] calldata quotes)
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
