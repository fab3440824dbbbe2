// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";

import {ParticipantRegistry} from "./ParticipantRegistry.sol";
import {ISettlementVault} from "./interfaces/ISettlementVault.sol";
import {AccountFlags} from "./libraries/AccountFlags.sol";
import {CalldataFields} from "./libraries/CalldataFields.sol";
import {Conversion} from "./libraries/Conversion.sol";
import {CurrencyDeltas} from "./libraries/CurrencyDeltas.sol";
import {CycleLegs} from "./libraries/CycleLegs.sol";
import {PackedAccount} from "./libraries/PackedAccount.sol";
import {TypedData} from "./libraries/TypedData.sol";
import {
    Account,
    Action,
    BatchItem,
    Config,
    Currency,
    CycleItem,
    EscrowedItem,
    Instruction,
    Participant,
    ParticipantKind,
    Quote,
    RatePoint,
    ReferenceRate,
    Signature,
    SignedQuote,
    Terms
} from "./types/Settlement.sol";

/// @title Corridor settlement vault
/// @notice See {ISettlementVault}.
contract SettlementVault is ParticipantRegistry, EIP712 {
    using SafeERC20 for IERC20Metadata;
    using AccountFlags for uint32;
    using PackedAccount for uint256;
    using CycleLegs for CycleLegs.Legs;

    bytes32 public constant ORACLE_ROLE = keccak256("ORACLE_ROLE");

    uint256 public constant BATCH_SIZE_MAX = 256;
    uint256 public constant RATE_POINTS_MAX = 1024;
    uint16 public constant BAND_BPS_MAX = 2_000;

    /// @dev A slot that held a batch before and is free again. Keeping it non-zero makes the
    /// next escrow into it a cheap storage update rather than a fresh slot.
    bytes32 private constant SLOT_FREE = bytes32(uint256(1));

    Config private _config;
    mapping(bytes6 pair => ReferenceRate) private _referenceRates;
    mapping(address owner => mapping(uint256 word => uint256 bits)) private _nonceBitmaps;
    mapping(address escrower => mapping(uint256 slot => bytes32 root)) private _slots;

    /// @dev A quote whose signature, signer, expiry and band have been checked, and the totals
    /// of the instructions it has priced so far in the call: its liquidity provider's legs and
    /// the fee are booked once from these totals.
    struct CheckedQuote {
        bytes32 hash;
        bytes3 sellCurrency;
        bytes3 buyCurrency;
        uint16 feeBps;
        address liquidityProvider;
        /// @dev The rate and the pair's exponents as one fraction (see `Conversion.scale`).
        uint256 multiplier;
        uint256 divisor;
        uint256 sold;
        uint256 fees;
        uint256 bought;
    }

    /// @dev Every call that moves a balance ends here: each currency's movements, fees and
    /// tokens in and out included, must sum to zero, as Uniswap v4 requires before an unlock
    /// ends.
    modifier netted() {
        _;
        _requireNetted();
    }

    /// @param admin Holds DEFAULT_ADMIN_ROLE: lists currencies, sets risk parameters and the
    /// quote signer, grants roles.
    /// @param feeAccount_ The ledger account that receives fee legs; registered here.
    /// @param quoteSigner The oracle's quote-signing key.
    /// @param bandBps Initial band around the reference rate, basis points.
    /// @param rateMaxAge Initial maximum age of a reference rate, seconds.
    constructor(address admin, address feeAccount_, address quoteSigner, uint16 bandBps, uint32 rateMaxAge)
        ParticipantRegistry(feeAccount_)
        EIP712("Corridor Settlement", "1")
    {
        if (admin == address(0)) revert VaultZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _participants[feeAccount_] = Participant(ParticipantKind.FeeAccount, true, false, bytes11("FEES"));
        emit ParticipantRegistered(feeAccount_, ParticipantKind.FeeAccount, bytes11("FEES"));
        _setQuoteSigner(quoteSigner);
        _setRiskParameters(bandBps, rateMaxAge);
    }

    // ================================================================== administration

    /// @inheritdoc ISettlementVault
    function setPaused(bool paused) external onlyRole(OPERATOR_ROLE) {
        _config.paused = paused;
        emit PausedSet(paused, msg.sender);
    }

    /// @inheritdoc ISettlementVault
    function setRiskParameters(uint16 bandBps, uint32 rateMaxAge) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setRiskParameters(bandBps, rateMaxAge);
    }

    /// @inheritdoc ISettlementVault
    function setQuoteSigner(address quoteSigner) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setQuoteSigner(quoteSigner);
    }

    /// @inheritdoc ISettlementVault
    function publishReferenceRates(RatePoint[] calldata points) external onlyRole(ORACLE_ROLE) {
        if (points.length > RATE_POINTS_MAX) revert BatchTooLarge(points.length, RATE_POINTS_MAX);
        for (uint256 i; i < points.length; ++i) {
            RatePoint calldata point = points[i];
            Currency memory sell = _requireCurrency(point.sellCurrency);
            Currency memory buy = _requireCurrency(point.buyCurrency);
            if (point.rate == 0 || point.sellCurrency == point.buyCurrency) {
                revert ReferenceRateInvalid(point.sellCurrency, point.buyCurrency, point.rate);
            }
            ReferenceRate storage ref = _referenceRates[_pair(point.sellCurrency, point.buyCurrency)];
            (ref.rate, ref.updatedAt, ref.sellDecimals, ref.buyDecimals) =
            (point.rate, uint40(block.timestamp), sell.decimals, buy.decimals);
            emit ReferenceRatePublished(point.sellCurrency, point.buyCurrency, point.rate);
        }
    }

    // ================================================================== participants

    /// @inheritdoc ISettlementVault
    function deposit(address participant, bytes3 currency, uint256 amount) external netted {
        _requireNotPaused();
        Currency memory c = _requireCurrency(currency);
        uint32 flags = _accounts[participant][currency].flags();
        uint32 kind = flags & (AccountFlags.BANK | AccountFlags.LIQUIDITY_PROVIDER | AccountFlags.FEE_ACCOUNT);
        if (kind == 0) revert ParticipantNotUsable(participant, currency, flags);
        int256 signed = _signed(amount);
        _book(participant, currency, signed, 0, kind);
        // The tokens that came in balance the credit.
        CurrencyDeltas.add(currency, -signed);
        emit Deposited(participant, currency, amount, msg.sender);
        IERC20Metadata(c.token).safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc ISettlementVault
    function withdraw(bytes3 currency, uint256 amount, address to) external netted {
        _requireNotPaused();
        if (to == address(0)) revert VaultZeroAddress();
        Currency memory c = _requireCurrency(currency);
        uint32 flags = _accounts[msg.sender][currency].flags();
        // Inactive participants may still take their money out; frozen ones may not.
        if (flags & (AccountFlags.ENABLED | AccountFlags.FROZEN) != AccountFlags.ENABLED) {
            revert ParticipantNotUsable(msg.sender, currency, flags);
        }
        uint256 available = _accounts[msg.sender][currency].available();
        if (available < amount) revert InsufficientAvailable(msg.sender, currency, available, amount);
        // amount <= available < 2**112: the cast is exact.
        _book(msg.sender, currency, -int256(amount), 0, 0);
        // The tokens that go out balance the debit.
        CurrencyDeltas.add(currency, int256(amount));
        emit Withdrawn(msg.sender, currency, amount, to);
        IERC20Metadata(c.token).safeTransfer(to, amount);
    }

    /// @inheritdoc ISettlementVault
    function invalidateNonces(uint256 word, uint256 mask) external {
        _nonceBitmaps[msg.sender][word] |= mask;
        emit NoncesInvalidated(msg.sender, word, mask);
    }

    // ================================================================== settlement

    /// @inheritdoc ISettlementVault
    function escrow(uint256 slot, Instruction calldata instruction, Signature calldata signature) external netted {
        _requireNotPaused();
        _openSlot(slot, _escrow(instruction, signature));
    }

    /// @inheritdoc ISettlementVault
    function escrowBatch(uint256 slot, Instruction[] calldata instructions, Signature[] calldata signatures)
        external
        netted
    {
        _requireNotPaused();
        uint256 n = _checkBatchSize(instructions.length);
        if (signatures.length != n) revert BatchLengthMismatch(n, signatures.length);
        bytes32[] memory leaves = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            leaves[i] = _escrow(instructions[i], signatures[i]);
        }
        _openSlot(slot, _root(leaves));
    }

    /// @inheritdoc ISettlementVault
    function settle(uint256 slot, Terms calldata terms, SignedQuote calldata quote) external netted {
        Config memory cfg = _config;
        if (cfg.paused) revert VaultPaused();
        _closeSingle(msg.sender, slot, terms);
        CheckedQuote memory checked = _checkQuote(quote, cfg);
        (address creditor, bytes3 buyCurrency, int256 buyAmount) = _settleEscrowed(terms, checked);
        _book(creditor, buyCurrency, buyAmount, 0, AccountFlags.BANK);
        _creditProvider(checked);
        _debitProvider(checked);
    }

    /// @inheritdoc ISettlementVault
    function refund(address escrower, uint256 slot, Terms calldata terms) external netted {
        _requireNotPaused();
        _closeSingle(escrower, slot, terms);
        _refund(terms);
    }

    /// @inheritdoc ISettlementVault
    function collectFees(bytes3[] calldata sellCurrencies, bytes3[] calldata buyCurrencies) external netted {
        _requireNotPaused();
        uint256 n = sellCurrencies.length;
        if (buyCurrencies.length != n) revert BatchLengthMismatch(n, buyCurrencies.length);
        if (n > RATE_POINTS_MAX) revert BatchTooLarge(n, RATE_POINTS_MAX);
        for (uint256 i; i < n; ++i) {
            ReferenceRate storage ref = _referenceRates[_pair(sellCurrencies[i], buyCurrencies[i])];
            uint256 amount = ref.feesAccrued;
            if (amount == 0) continue;
            _moveFees(ref, amount, sellCurrencies[i], -int256(amount));
            _book(feeAccount, sellCurrencies[i], int256(amount), 0, AccountFlags.FEE_ACCOUNT);
            emit FeesCollected(sellCurrencies[i], buyCurrencies[i], amount);
        }
    }

    /// @inheritdoc ISettlementVault
    function resolveBatch(address escrower, uint256 slot, BatchItem[] calldata items, SignedQuote[] calldata quotes)
        external
        netted
    {
        Config memory cfg = _config;
        if (cfg.paused) revert VaultPaused();
        bytes32[] memory leaves = _checkBatchCommitment(escrower, slot, items);
        CheckedQuote[] memory checked = new CheckedQuote[](quotes.length);
        if (quotes.length != 0) {
            if (msg.sender != escrower) revert SettleNotByEscrower(escrower, msg.sender);
            for (uint256 q; q < quotes.length; ++q) {
                checked[q] = _checkQuote(quotes[q], cfg);
            }
        }
        bool open = _applyBatch(items, leaves, checked);
        _slots[escrower][slot] = open ? _root(leaves) : SLOT_FREE;
        _bookQuotes(checked);
    }

    /// @inheritdoc ISettlementVault
    function settleCycle(CycleItem[] calldata items, EscrowedItem[] calldata escrowed, SignedQuote[] calldata quotes)
        external
        netted
    {
        Config memory cfg = _config;
        if (cfg.paused) revert VaultPaused();
        _checkBatchSize(items.length + escrowed.length);
        CheckedQuote[] memory checked = new CheckedQuote[](quotes.length);
        for (uint256 q; q < quotes.length; ++q) {
            checked[q] = _checkQuote(quotes[q], cfg);
        }
        uint256 cycle = cfg.cycles + 1;
        // Checked by _checkBatchSize: fewer than 2**40 cycles can end before the counter wraps
        // only after a trillion transactions.
        // forge-lint: disable-next-line(unsafe-typecast)
        _config.cycles = uint40(cycle);
        // Two legs per netted instruction (debtor and creditor), one per escrowed one (its
        // creditor) and two per quote (its liquidity provider's sell and buy currency) at most.
        CycleLegs.Legs memory legs = CycleLegs.create(2 * items.length + escrowed.length + 2 * quotes.length);
        for (uint256 i; i < items.length; ++i) {
            _priceCycleItem(items[i], checked, legs, cycle);
        }
        for (uint256 i; i < escrowed.length; ++i) {
            EscrowedItem calldata item = escrowed[i];
            _closeSingle(msg.sender, item.slot, item.terms);
            (address creditor, bytes3 buyCurrency, int256 buyAmount) =
                _settleEscrowed(item.terms, _quoteAt(checked, item.quoteIndex));
            legs.add(creditor, buyCurrency, AccountFlags.BANK, buyAmount);
        }
        for (uint256 q; q < checked.length; ++q) {
            CheckedQuote memory quote = checked[q];
            if (quote.sold == 0) continue;
            address lp = quote.liquidityProvider;
            legs.add(lp, quote.sellCurrency, AccountFlags.LIQUIDITY_PROVIDER, int256(quote.sold - quote.fees));
            legs.add(lp, quote.buyCurrency, AccountFlags.LIQUIDITY_PROVIDER, -int256(quote.bought));
            if (quote.fees != 0) _accrueFee(quote, quote.fees);
        }
        _bookCycle(cycle, items.length + escrowed.length, legs, checked);
    }

    // ================================================================== views

    function config() external view returns (Config memory) {
        return _config;
    }

    function accountOf(address participant, bytes3 currency) external view returns (Account memory) {
        uint256 word = _accounts[participant][currency];
        return Account(uint112(word.available()), uint112(word.escrowed()), word.flags());
    }

    function referenceRate(bytes3 sellCurrency, bytes3 buyCurrency) external view returns (ReferenceRate memory) {
        return _referenceRates[_pair(sellCurrency, buyCurrency)];
    }

    function slotRoot(address escrower, uint256 slot) external view returns (bytes32) {
        return _slots[escrower][slot];
    }

    function nonceBitmap(address owner, uint256 word) external view returns (uint256) {
        return _nonceBitmaps[owner][word];
    }

    function isNonceUsed(address owner, uint256 nonce) external view returns (bool) {
        return _nonceBitmaps[owner][nonce >> 8] & (1 << (nonce & 0xff)) != 0;
    }

    function instructionDigest(Instruction calldata instruction) external view returns (bytes32) {
        return _hashTypedDataV4(TypedData.hash(instruction));
    }

    function termsHash(Terms calldata terms) external pure returns (bytes32) {
        return TypedData.hash(terms);
    }

    function quoteDigest(SignedQuote calldata quote) external view returns (bytes32) {
        return _hashTypedDataV4(TypedData.hash(quote.quote));
    }

    function previewConversion(uint256 sellAmount, uint256 rate, uint256 feeBps, uint8 sellDecimals, uint8 buyDecimals)
        external
        pure
        returns (uint256 buyAmount, uint256 fee)
    {
        if (sellAmount > type(uint128).max) revert VaultParameterOutOfRange(sellAmount, type(uint128).max);
        if (rate > type(uint128).max) revert VaultParameterOutOfRange(rate, type(uint128).max);
        if (feeBps > Conversion.BPS) revert VaultParameterOutOfRange(feeBps, Conversion.BPS);
        if (sellDecimals > Conversion.DECIMALS_MAX) {
            revert VaultParameterOutOfRange(sellDecimals, Conversion.DECIMALS_MAX);
        }
        if (buyDecimals > Conversion.DECIMALS_MAX) {
            revert VaultParameterOutOfRange(buyDecimals, Conversion.DECIMALS_MAX);
        }
        return Conversion.convert(sellAmount, rate, feeBps, sellDecimals, buyDecimals);
    }

    // ================================================================== internals: settlement

    /// @dev Checks and books one instruction's escrow; returns its struct hash (its leaf).
    function _escrow(Instruction calldata ins, Signature calldata signature) private returns (bytes32 leaf) {
        // The commitment below hashes the very words the debtor signed, so settlement later sees
        // exactly what was signed and escrowed.
        (bytes32 id, address debtor, bytes3 sellCurrency, uint256 sellAmount,) = _authorise(ins, signature);
        // sellAmount was masked to 128 bits: the casts are exact.
        _book(debtor, sellCurrency, -int256(sellAmount), int256(sellAmount), AccountFlags.BANK);
        emit InstructionEscrowed(id, debtor, sellCurrency, uint128(sellAmount));
        leaf = TypedData.termsHash(ins);
    }

    /// @dev Books the debtor's leg of one escrowed instruction against a checked quote, adds its
    /// figures to the quote's totals (from which `_bookQuotes` or a cycle books the liquidity
    /// provider's legs and the fee once) and returns the creditor's leg for the caller to book.
    function _settleEscrowed(Terms calldata t, CheckedQuote memory q)
        private
        returns (address creditor, bytes3 buyCurrency, int256 buyAmount)
    {
        // The caller has matched these words against the slot's commitment, which escrow hashed
        // from the very words the debtor signed, so they need no re-validation.
        bytes32 id;
        bytes3 sellCurrency;
        uint256 sellAmount;
        uint256 deadline;
        (id, sellCurrency, sellAmount, buyCurrency, deadline) = CalldataFields.settleFields(t);
        if (block.timestamp > deadline) revert InstructionExpired(id, deadline, block.timestamp);
        address debtor;
        uint256 minBuyAmount;
        (debtor, creditor, minBuyAmount) = CalldataFields.parties(t);
        (uint256 bought, uint256 fee) = _price(id, sellCurrency, sellAmount, buyCurrency, minBuyAmount, q);
        // Sell leg: the debtor's escrow leaves (to the liquidity provider and the fee account,
        // booked from the quote's totals).
        _book(debtor, sellCurrency, 0, -int256(sellAmount), AccountFlags.BANK);
        // The casts are exact: fee <= sellAmount < 2**128, and _price bounds bought by 2**112.
        emit InstructionSettled(id, q.liquidityProvider, creditor, buyCurrency, uint128(bought), uint128(fee));
        buyAmount = int256(bought);
    }

    /// @dev The checks every signed instruction passes before it moves anything, in escrow and in
    /// a cycle alike: in time, a non-zero amount between two currencies, signed by its debtor, its
    /// nonce not used before (and spent now). Returns the fields the caller books.
    function _authorise(Instruction calldata ins, Signature calldata signature)
        private
        returns (bytes32 id, address debtor, bytes3 sellCurrency, uint256 sellAmount, bytes3 buyCurrency)
    {
        // The debtor's signature is over these very words.
        uint256 nonce;
        uint256 deadline;
        (id, nonce, debtor, sellCurrency, sellAmount, buyCurrency, deadline) = CalldataFields.escrowFields(ins);
        if (block.timestamp > deadline) revert InstructionExpired(id, deadline, block.timestamp);
        if (sellAmount == 0) revert InstructionAmountZero(id);
        if (sellCurrency == buyCurrency) revert InstructionSameCurrency(id, sellCurrency);
        address signer = _recover(_hashTypedDataV4(TypedData.hash(ins)), signature);
        if (signer != debtor) revert InstructionSignerMismatch(id, debtor, signer);
        _useNonce(debtor, nonce);
    }

    /// @dev Checks one never-escrowed instruction of a cycle as escrow would (`_authorise`) and
    /// prices it; its legs go into the cycle's sums.
    function _priceCycleItem(
        CycleItem calldata item,
        CheckedQuote[] memory checked,
        CycleLegs.Legs memory legs,
        uint256 cycle
    ) private {
        Instruction calldata ins = item.instruction;
        (bytes32 id, address debtor, bytes3 sellCurrency, uint256 sellAmount, bytes3 buyCurrency) =
            _authorise(ins, item.signature);
        CheckedQuote memory q = _quoteAt(checked, item.quoteIndex);
        (address creditor, uint256 minBuyAmount) = CalldataFields.creditorFields(ins);
        (uint256 buyAmount, uint256 fee) = _price(id, sellCurrency, sellAmount, buyCurrency, minBuyAmount, q);
        // sellAmount is masked to 128 bits and buyAmount below 2**128 (checked in _price).
        legs.add(debtor, sellCurrency, AccountFlags.BANK, -int256(sellAmount));
        legs.add(creditor, buyCurrency, AccountFlags.BANK, int256(buyAmount));
        emit InstructionNetted(
            id,
            cycle,
            debtor,
            creditor,
            q.liquidityProvider,
            sellCurrency,
            uint128(sellAmount),
            buyCurrency,
            uint128(buyAmount),
            uint128(fee)
        );
    }

    /// @dev Converts at the quote after checking its pair and the bank's minimum, and adds the
    /// figures to the quote's totals. A quote's pair has two different currencies (the oracle
    /// publishes no rate from a currency to itself), so matching it checks the instruction's too.
    function _price(
        bytes32 id,
        bytes3 sellCurrency,
        uint256 sellAmount,
        bytes3 buyCurrency,
        uint256 minBuyAmount,
        CheckedQuote memory q
    ) private pure returns (uint256 buyAmount, uint256 fee) {
        if (q.sellCurrency != sellCurrency || q.buyCurrency != buyCurrency) {
            revert QuotePairMismatch(id, q.hash);
        }
        (buyAmount, fee) = Conversion.convertScaled(sellAmount, q.feeBps, q.multiplier, q.divisor);
        if (buyAmount < minBuyAmount) revert BuyAmountBelowMinimum(id, buyAmount, minBuyAmount);
        if (buyAmount > PackedAccount.AMOUNT_MAX) revert PackedAccount.AccountBalanceOverflow(buyAmount);
        // Each figure is below 2**128 (sellAmount masked, fee <= sellAmount, buyAmount checked
        // just above) and a call prices at most BATCH_SIZE_MAX instructions: no overflow.
        unchecked {
            q.sold += sellAmount;
            q.fees += fee;
            q.bought += buyAmount;
        }
    }

    function _quoteAt(CheckedQuote[] memory checked, uint256 index) private pure returns (CheckedQuote memory) {
        if (index >= checked.length) revert BatchQuoteIndexOutOfRange(index, checked.length);
        return checked[index];
    }

    /// @dev Books each quote's liquidity provider legs from its totals, credits first and debits
    /// after, so that a provider quoting both ways is checked on its net, and accrues the fees.
    function _bookQuotes(CheckedQuote[] memory checked) private {
        for (uint256 q; q < checked.length; ++q) {
            _creditProvider(checked[q]);
        }
        for (uint256 q; q < checked.length; ++q) {
            _debitProvider(checked[q]);
        }
    }

    /// @dev The sell leg's other side: the liquidity provider gets what the quote's instructions
    /// sold, less the fee, which accrues to the fee account.
    function _creditProvider(CheckedQuote memory quote) private {
        uint256 sold = quote.sold;
        if (sold == 0) return;
        uint256 fees = quote.fees;
        _book(quote.liquidityProvider, quote.sellCurrency, int256(sold - fees), 0, AccountFlags.LIQUIDITY_PROVIDER);
        if (fees != 0) _accrueFee(quote, fees);
    }

    /// @dev The buy leg's source: the liquidity provider pays what the quote's instructions bought.
    function _debitProvider(CheckedQuote memory quote) private {
        if (quote.sold == 0) return;
        _book(quote.liquidityProvider, quote.buyCurrency, -int256(quote.bought), 0, AccountFlags.LIQUIDITY_PROVIDER);
    }

    /// @dev Books each account's net movement of the cycle once (a net debit must be covered by
    /// the account's available balance, or `_book` reverts naming it) and reports, per currency,
    /// the value the cycle's instructions would have moved gross and the net debits it booked.
    function _bookCycle(uint256 cycle, uint256 count, CycleLegs.Legs memory legs, CheckedQuote[] memory checked)
        private
    {
        bytes3[] memory codes = new bytes3[](2 * checked.length);
        uint256[] memory gross = new uint256[](codes.length);
        uint256[] memory net = new uint256[](codes.length);
        uint256 distinct;
        for (uint256 q; q < checked.length; ++q) {
            CheckedQuote memory quote = checked[q];
            uint256 s = _indexOf(codes, distinct, quote.sellCurrency);
            if (s == distinct) codes[distinct++] = quote.sellCurrency;
            gross[s] += quote.sold;
            uint256 b = _indexOf(codes, distinct, quote.buyCurrency);
            if (b == distinct) codes[distinct++] = quote.buyCurrency;
            gross[b] += quote.bought;
        }
        for (uint256 i; i < legs.count; ++i) {
            (address participant, bytes3 currency, uint32 kind, int256 sum) = legs.at(i);
            _book(participant, currency, sum, 0, kind);
            if (sum < 0) net[_indexOf(codes, distinct, currency)] += uint256(-sum);
        }
        legs.clear();
        assembly ("memory-safe") {
            // Trim the per-currency arrays to the currencies seen.
            mstore(codes, distinct)
            mstore(gross, distinct)
            mstore(net, distinct)
        }
        emit CycleSettled(cycle, count, codes, gross, net);
    }

    function _indexOf(bytes3[] memory codes, uint256 length, bytes3 code) private pure returns (uint256 i) {
        while (i < length && codes[i] != code) ++i;
    }

    /// @dev Adds `fee` to the pair's accrued fees, or books it on the fee account at once in the
    /// rare case the 72-bit accrual would overflow.
    function _accrueFee(CheckedQuote memory q, uint256 fee) private {
        bytes3 sellCurrency = q.sellCurrency;
        ReferenceRate storage ref = _referenceRates[_pair(sellCurrency, q.buyCurrency)];
        uint256 accrued = ref.feesAccrued;
        if (accrued + fee <= type(uint72).max) {
            _moveFees(ref, accrued, sellCurrency, int256(fee));
        } else {
            _book(feeAccount, sellCurrency, int256(fee), 0, AccountFlags.FEE_ACCOUNT);
        }
    }

    function _refund(Terms calldata ins) private {
        uint256 deadline = ins.deadline;
        if (block.timestamp <= deadline && !hasRole(OPERATOR_ROLE, msg.sender)) {
            revert RefundNotAllowed(ins.id, deadline, block.timestamp, msg.sender);
        }
        address debtor = ins.debtor;
        bytes3 sellCurrency = ins.sellCurrency;
        uint128 amount = ins.sellAmount;
        // The escrow of this instruction put `amount` into escrowed and no settlement or refund
        // has taken it out (its slot position was still open). A refund reaches a frozen or
        // inactive debtor too: it only gives back what was its own.
        _book(debtor, sellCurrency, int256(uint256(amount)), -int256(uint256(amount)), 0);
        emit InstructionRefunded(ins.id, debtor, sellCurrency, amount, msg.sender);
    }

    function _checkQuote(SignedQuote calldata signed, Config memory cfg) private view returns (CheckedQuote memory q) {
        Quote calldata quote = signed.quote;
        bytes32 quoteHash = TypedData.hash(quote);
        // The signature below is over these very words, so a quote is only ever what the quote
        // key signed.
        (bytes3 sellCurrency, bytes3 buyCurrency, uint256 rate, uint256 feeBps, address lp, uint256 expiry) =
            CalldataFields.quoteFields(quote);
        if (block.timestamp > expiry) revert QuoteExpired(quoteHash, expiry, block.timestamp);
        if (feeBps > Conversion.BPS) revert QuoteFeeTooHigh(quoteHash, feeBps);
        address signer = _recover(_hashTypedDataV4(quoteHash), signed.signature);
        if (signer != cfg.quoteSigner) revert QuoteSignerInvalid(quoteHash, signer);

        ReferenceRate memory ref = _referenceRates[_pair(sellCurrency, buyCurrency)];
        if (ref.rate == 0) revert ReferenceRateMissing(sellCurrency, buyCurrency);
        if (block.timestamp > uint256(ref.updatedAt) + cfg.rateMaxAge) {
            revert ReferenceRateStale(sellCurrency, buyCurrency, ref.updatedAt, cfg.rateMaxAge);
        }
        uint256 distance = rate > ref.rate ? rate - ref.rate : ref.rate - rate;
        // Both rates are below 2**128 and the factors below 2**14, so no product overflows.
        if (distance * Conversion.BPS > uint256(ref.rate) * cfg.bandBps) {
            revert RateOutOfBand(sellCurrency, buyCurrency, rate, ref.rate, cfg.bandBps);
        }
        // feeBps was masked to 16 bits above (and rate to 128).
        (uint256 multiplier, uint256 divisor) = Conversion.scale(rate, ref.sellDecimals, ref.buyDecimals);
        q = CheckedQuote(quoteHash, sellCurrency, buyCurrency, uint16(feeBps), lp, multiplier, divisor, 0, 0, 0);
    }

    /// @dev The one place balances move: every change of a participant's available or escrowed
    /// balance goes through here (as every ERC-20 movement goes through OpenZeppelin's
    /// `_update`), and adds its movement to the transaction's currency delta (as Uniswap v4's
    /// `_accountDelta`), which `netted` requires back at zero before the call returns. Checks the
    /// account is usable as `kind` (none when zero) and that neither balance goes below zero.
    function _book(address participant, bytes3 currency, int256 availableDelta, int256 escrowedDelta, uint32 kind)
        internal
    {
        mapping(bytes3 => uint256) storage accounts = _accounts[participant];
        uint256 word = accounts[currency];
        uint32 flags = word.flags();
        if (kind != 0 && !flags.usableAs(kind)) revert ParticipantNotUsable(participant, currency, flags);
        uint256 available = word.available();
        uint256 escrowed = word.escrowed();
        if (availableDelta != 0) available = _shifted(available, availableDelta, participant, currency);
        if (escrowedDelta != 0) escrowed = _shifted(escrowed, escrowedDelta, participant, currency);
        accounts[currency] = PackedAccount.pack(available, escrowed, flags);
        // Moving between a participant's own balances changes nothing the vault owes.
        int256 movement = availableDelta + escrowedDelta;
        if (movement != 0) CurrencyDeltas.add(currency, movement);
    }

    /// @dev `balance + delta`, or a revert naming the account if it would go below zero.
    function _shifted(uint256 balance, int256 delta, address participant, bytes3 currency)
        private
        pure
        returns (uint256)
    {
        if (delta >= 0) return balance + uint256(delta);
        // Callers' deltas are above -2**129: the negation is exact.
        uint256 amount = uint256(-delta);
        if (balance < amount) revert InsufficientAvailable(participant, currency, balance, amount);
        // Checked just above.
        unchecked {
            return balance - amount;
        }
    }

    /// @dev The one place the fees accrued on a pair change (the fee account's share not yet on
    /// its balance); adds the change to the currency delta as `_book` does.
    function _moveFees(ReferenceRate storage ref, uint256 accrued, bytes3 sellCurrency, int256 amount) private {
        // Callers keep the result within 0 and 2**72 - 1: accruals check the bound, collection
        // takes out exactly what accrued.
        // forge-lint: disable-next-line(unsafe-typecast)
        ref.feesAccrued = uint72(uint256(int256(accrued) + amount));
        CurrencyDeltas.add(sellCurrency, amount);
    }

    /// @dev Reverts with the first listed currency whose movements in this call do not sum to zero.
    function _requireNetted() private view {
        if (CurrencyDeltas.nonzeroCount() == 0) return;
        uint256 n = _currencyCodes.length;
        for (uint256 i; i < n; ++i) {
            bytes3 code = _currencyCodes[i];
            int256 delta = CurrencyDeltas.get(code);
            if (delta != 0) revert CurrencyNotNetted(code, delta);
        }
        // Balances only exist in listed currencies, so the loop above has found it.
        revert CurrencyNotNetted(bytes3(0), 0);
    }

    /// @dev An amount as a signed movement; amounts a balance cannot hold are refused.
    function _signed(uint256 amount) private pure returns (int256) {
        if (amount > PackedAccount.AMOUNT_MAX) revert PackedAccount.AccountBalanceOverflow(amount);
        return int256(amount);
    }

    /// @dev The signer of `digest`, from a compact (EIP-2098) signature. Rejects high-s
    /// signatures (EIP-2: each signature has exactly one valid form) and ones that recover to
    /// no address.
    function _recover(bytes32 digest, Signature calldata signature) private pure returns (address signer) {
        ECDSA.RecoverError failure;
        bytes32 s;
        (signer, failure, s) = ECDSA.tryRecover(digest, signature.r, signature.vs);
        if (failure == ECDSA.RecoverError.InvalidSignatureS) revert SignatureHighS(s);
        if (failure != ECDSA.RecoverError.NoError) revert SignatureInvalid();
    }

    function _useNonce(address owner, uint256 nonce) private {
        uint256 bit = 1 << (nonce & 0xff);
        uint256 flipped = _nonceBitmaps[owner][nonce >> 8] ^= bit;
        if (flipped & bit == 0) revert InstructionNonceUsed(owner, nonce);
    }

    function _openSlot(uint256 slot, bytes32 root) private {
        if (uint256(_slots[msg.sender][slot]) > uint256(SLOT_FREE)) revert SlotOccupied(msg.sender, slot);
        _slots[msg.sender][slot] = root;
    }

    function _closeSingle(address escrower, uint256 slot, Terms calldata terms) private {
        bytes32 stored = _slots[escrower][slot];
        bytes32 leaf = TypedData.hash(terms);
        if (stored != leaf) revert SlotMismatch(escrower, slot, stored, leaf);
        _slots[escrower][slot] = SLOT_FREE;
    }

    /// @dev Hashes the positions as given and checks them against the slot's commitment
    /// before anything moves.
    function _checkBatchCommitment(address escrower, uint256 slot, BatchItem[] calldata items)
        private
        view
        returns (bytes32[] memory leaves)
    {
        uint256 n = _checkBatchSize(items.length);
        leaves = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            if (items[i].action != Action.Resolved) leaves[i] = TypedData.hash(items[i].terms);
        }
        bytes32 stored = _slots[escrower][slot];
        bytes32 computed = _root(leaves);
        if (stored != computed) revert SlotMismatch(escrower, slot, stored, computed);
    }

    /// @dev Settles or refunds each position as asked, zeroing its leaf; returns whether any
    /// position stays open. The liquidity providers' legs are booked after, from the quotes'
    /// totals.
    function _applyBatch(BatchItem[] calldata items, bytes32[] memory leaves, CheckedQuote[] memory checked)
        private
        returns (bool open)
    {
        for (uint256 i; i < items.length; ++i) {
            BatchItem calldata item = items[i];
            Action action = item.action;
            if (action == Action.Keep) {
                open = true;
                continue;
            }
            if (action == Action.Settle) {
                (address creditor, bytes3 buyCurrency, int256 buyAmount) =
                    _settleEscrowed(item.terms, _quoteAt(checked, item.quoteIndex));
                _book(creditor, buyCurrency, buyAmount, 0, AccountFlags.BANK);
            } else if (action == Action.Refund) {
                _refund(item.terms);
            }
            leaves[i] = bytes32(0);
        }
    }

    /// @dev A batch of one commits to its leaf itself; larger batches to the hash of the packed
    /// leaves. A resolved position is a zero leaf.
    function _root(bytes32[] memory leaves) private pure returns (bytes32 root) {
        if (leaves.length == 1) return leaves[0];
        assembly ("memory-safe") {
            root := keccak256(add(leaves, 0x20), shl(5, mload(leaves)))
        }
    }

    function _checkBatchSize(uint256 n) private pure returns (uint256) {
        if (n == 0) revert BatchEmpty();
        if (n > BATCH_SIZE_MAX) revert BatchTooLarge(n, BATCH_SIZE_MAX);
        return n;
    }

    function _requireNotPaused() private view {
        if (_config.paused) revert VaultPaused();
    }

    function _setRiskParameters(uint16 bandBps, uint32 rateMaxAge) private {
        if (bandBps > BAND_BPS_MAX) revert VaultParameterOutOfRange(bandBps, BAND_BPS_MAX);
        if (rateMaxAge == 0) revert VaultParameterOutOfRange(0, type(uint32).max);
        _config.bandBps = bandBps;
        _config.rateMaxAge = rateMaxAge;
        emit RiskParametersSet(bandBps, rateMaxAge);
    }

    function _setQuoteSigner(address quoteSigner) private {
        if (quoteSigner == address(0)) revert VaultZeroAddress();
        _config.quoteSigner = quoteSigner;
        emit QuoteSignerSet(quoteSigner);
    }

    function _pair(bytes3 sellCurrency, bytes3 buyCurrency) private pure returns (bytes6) {
        return bytes6(uint48(uint24(sellCurrency)) << 24 | uint48(uint24(buyCurrency)));
    }
}
