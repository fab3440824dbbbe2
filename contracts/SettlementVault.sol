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
import {PackedAccount} from "./libraries/PackedAccount.sol";
import {TypedData} from "./libraries/TypedData.sol";
import {
    Account,
    Action,
    BatchItem,
    Config,
    Currency,
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
    using CurrencyDeltas for CurrencyDeltas.Deltas;

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

    /// @dev A quote whose signature, signer, expiry and band have been checked.
    struct CheckedQuote {
        bytes32 hash;
        bytes3 sellCurrency;
        bytes3 buyCurrency;
        uint128 rate;
        uint16 feeBps;
        address liquidityProvider;
        uint8 sellDecimals;
        uint8 buyDecimals;
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
    function deposit(address participant, bytes3 currency, uint256 amount) external {
        _requireNotPaused();
        Currency memory c = _requireCurrency(currency);
        uint256 word = _accounts[participant][currency];
        uint32 flags = word.flags();
        uint32 kind = flags & (AccountFlags.BANK | AccountFlags.LIQUIDITY_PROVIDER | AccountFlags.FEE_ACCOUNT);
        if (kind == 0 || !flags.usableAs(kind)) revert ParticipantNotUsable(participant, currency, flags);
        _accounts[participant][currency] = PackedAccount.pack(word.available() + amount, word.escrowed(), flags);
        emit Deposited(participant, currency, amount, msg.sender);
        IERC20Metadata(c.token).safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc ISettlementVault
    function withdraw(bytes3 currency, uint256 amount, address to) external {
        _requireNotPaused();
        if (to == address(0)) revert VaultZeroAddress();
        Currency memory c = _requireCurrency(currency);
        uint256 word = _accounts[msg.sender][currency];
        uint32 flags = word.flags();
        // Inactive participants may still take their money out; frozen ones may not.
        if (flags & (AccountFlags.ENABLED | AccountFlags.FROZEN) != AccountFlags.ENABLED) {
            revert ParticipantNotUsable(msg.sender, currency, flags);
        }
        uint256 available = word.available();
        if (available < amount) revert InsufficientAvailable(msg.sender, currency, available, amount);
        // Cannot underflow: checked just above.
        unchecked {
            _accounts[msg.sender][currency] = word - amount;
        }
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
    function escrow(uint256 slot, Instruction calldata instruction, Signature calldata signature) external {
        _requireNotPaused();
        _openSlot(slot, _escrow(instruction, signature));
    }

    /// @inheritdoc ISettlementVault
    function escrowBatch(uint256 slot, Instruction[] calldata instructions, Signature[] calldata signatures) external {
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
    function settle(uint256 slot, Terms calldata terms, SignedQuote calldata quote) external {
        Config memory cfg = _config;
        if (cfg.paused) revert VaultPaused();
        _closeSingle(msg.sender, slot, terms);
        // One instruction's legs net to zero per currency by construction (each amount is
        // debited once and credited once in _settle); batches check the net explicitly.
        _settle(terms, _checkQuote(quote, cfg));
    }

    /// @inheritdoc ISettlementVault
    function refund(address escrower, uint256 slot, Terms calldata terms) external {
        _requireNotPaused();
        _closeSingle(escrower, slot, terms);
        _refund(terms);
    }

    /// @inheritdoc ISettlementVault
    function collectFees(bytes3[] calldata sellCurrencies, bytes3[] calldata buyCurrencies) external {
        _requireNotPaused();
        uint256 n = sellCurrencies.length;
        if (buyCurrencies.length != n) revert BatchLengthMismatch(n, buyCurrencies.length);
        if (n > RATE_POINTS_MAX) revert BatchTooLarge(n, RATE_POINTS_MAX);
        for (uint256 i; i < n; ++i) {
            ReferenceRate storage ref = _referenceRates[_pair(sellCurrencies[i], buyCurrencies[i])];
            uint256 amount = ref.feesAccrued;
            if (amount == 0) continue;
            ref.feesAccrued = 0;
            _credit(feeAccount, sellCurrencies[i], amount, AccountFlags.FEE_ACCOUNT);
            emit FeesCollected(sellCurrencies[i], buyCurrencies[i], amount);
        }
    }

    /// @inheritdoc ISettlementVault
    function resolveBatch(address escrower, uint256 slot, BatchItem[] calldata items, SignedQuote[] calldata quotes)
        external
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
        // Starts empty: no currency has moved yet.
        // slither-disable-next-line uninitialized-local
        CurrencyDeltas.Deltas memory deltas;
        bool open = _applyBatch(items, leaves, checked, deltas);
        _slots[escrower][slot] = open ? _root(leaves) : SLOT_FREE;
        deltas.requireNetted();
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
        // The debtor's signature is over these very words, and the commitment below hashes them
        // too, so settlement later sees exactly what was signed and escrowed.
        (
            bytes32 id,
            uint256 nonce,
            address debtor,
            bytes3 sellCurrency,
            uint256 sellAmount,
            bytes3 buyCurrency,
            uint256 deadline
        ) = CalldataFields.escrowFields(ins);
        if (block.timestamp > deadline) revert InstructionExpired(id, deadline, block.timestamp);
        if (sellAmount == 0) revert InstructionAmountZero(id);
        if (sellCurrency == buyCurrency) revert InstructionSameCurrency(id, sellCurrency);
        address signer = _recover(_hashTypedDataV4(TypedData.hash(ins)), signature);
        if (signer != debtor) revert InstructionSignerMismatch(id, debtor, signer);
        _useNonce(debtor, nonce);

        uint256 word = _accounts[debtor][sellCurrency];
        uint32 flags = word.flags();
        if (!flags.usableAs(AccountFlags.BANK)) revert ParticipantNotUsable(debtor, sellCurrency, flags);
        uint256 available = word.available();
        if (available < sellAmount) revert InsufficientAvailable(debtor, sellCurrency, available, sellAmount);
        // Moving the amount from available to escrowed keeps their sum, which fits in 224 bits;
        // escrowed + amount <= available + escrowed < 2**112 for the sum the vault can hold.
        _accounts[debtor][sellCurrency] =
            PackedAccount.pack(available - sellAmount, word.escrowed() + sellAmount, flags);
        emit InstructionEscrowed(id, debtor, sellCurrency, uint128(sellAmount));
        leaf = TypedData.termsHash(ins);
    }

    /// @dev Books the three legs of one escrowed instruction against a checked quote and returns
    /// the buy amount and fee. The checked quote is in memory and its pair slot is passed in, so
    /// that the fee accrues into the slot the quote check has just read.
    function _settle(Terms calldata t, CheckedQuote memory q) private returns (uint256, uint256) {
        // The caller has matched these words against the slot's commitment, which escrow hashed
        // from the very words the debtor signed, so they need no re-validation.
        (bytes32 id, bytes3 sellCurrency, uint256 sellAmount, bytes3 buyCurrency, uint256 deadline) =
            CalldataFields.settleFields(t);
        if (block.timestamp > deadline) revert InstructionExpired(id, deadline, block.timestamp);
        if (q.sellCurrency != sellCurrency || q.buyCurrency != buyCurrency) revert QuotePairMismatch(id, q.hash);
        (uint256 buyAmount, uint256 fee) =
            Conversion.convert(sellAmount, q.rate, q.feeBps, q.sellDecimals, q.buyDecimals);
        (address debtor, address creditor, uint256 minBuyAmount) = CalldataFields.parties(t);
        if (buyAmount < minBuyAmount) revert BuyAmountBelowMinimum(id, buyAmount, minBuyAmount);
        address lp = q.liquidityProvider;

        // Sell leg: the debtor's escrow leaves, the liquidity provider gets it less the fee.
        _debitEscrowed(debtor, sellCurrency, sellAmount);
        _credit(lp, sellCurrency, sellAmount - fee, AccountFlags.LIQUIDITY_PROVIDER);
        // Fee leg: accrues to the fee account on the pair.
        if (fee != 0) _accrueFee(sellCurrency, buyCurrency, fee);
        // Buy leg: the liquidity provider pays the creditor.
        _debitAvailable(lp, buyCurrency, buyAmount, AccountFlags.LIQUIDITY_PROVIDER);
        _credit(creditor, buyCurrency, buyAmount, AccountFlags.BANK);

        // The casts are exact: fee <= sellAmount < 2**128, and buyAmount was just debited from
        // a 112-bit balance.
        emit InstructionSettled(id, lp, creditor, buyCurrency, uint128(buyAmount), uint128(fee));
        return (buyAmount, fee);
    }

    /// @dev Adds `fee` to the pair's accrued fees, or books it on the fee account at once in the
    /// rare case the 72-bit accrual would overflow.
    function _accrueFee(bytes3 sellCurrency, bytes3 buyCurrency, uint256 fee) private {
        ReferenceRate storage ref = _referenceRates[_pair(sellCurrency, buyCurrency)];
        uint256 accrued = uint256(ref.feesAccrued) + fee;
        if (accrued <= type(uint72).max) {
            // Checked just above.
            // forge-lint: disable-next-line(unsafe-typecast)
            ref.feesAccrued = uint72(accrued);
        } else {
            _credit(feeAccount, sellCurrency, fee, AccountFlags.FEE_ACCOUNT);
        }
    }

    function _refund(Terms calldata ins) private {
        uint256 deadline = ins.deadline;
        if (block.timestamp <= deadline && !hasRole(OPERATOR_ROLE, msg.sender)) {
            revert RefundNotAllowed(ins.id, deadline, block.timestamp, msg.sender);
        }
        address debtor = ins.debtor;
        bytes3 sellCurrency = ins.sellCurrency;
        uint256 amount = ins.sellAmount;
        uint256 word = _accounts[debtor][sellCurrency];
        // The escrow of this instruction put `amount` into escrowed and no settlement or refund
        // has taken it out (its slot position was still open), so the subtraction holds.
        _accounts[debtor][sellCurrency] =
            PackedAccount.pack(word.available() + amount, word.escrowed() - amount, word.flags());
        emit InstructionRefunded(ins.id, debtor, sellCurrency, uint128(amount), msg.sender);
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
        // rate and feeBps were masked to 128 and 16 bits above.
        q = CheckedQuote(
            quoteHash, sellCurrency, buyCurrency, uint128(rate), uint16(feeBps), lp, ref.sellDecimals, ref.buyDecimals
        );
    }

    function _debitEscrowed(address participant, bytes3 currency, uint256 amount) private {
        mapping(bytes3 => uint256) storage accounts = _accounts[participant];
        uint256 word = accounts[currency];
        uint32 flags = word.flags();
        if (!flags.usableAs(AccountFlags.BANK)) revert ParticipantNotUsable(participant, currency, flags);
        // See _refund: the escrow of this very instruction holds the amount, so escrowed >= amount
        // and the subtraction stays inside the escrowed field.
        if (word.escrowed() < amount) revert InsufficientAvailable(participant, currency, word.escrowed(), amount);
        unchecked {
            accounts[currency] = word - (amount << 112);
        }
    }

    function _debitAvailable(address participant, bytes3 currency, uint256 amount, uint32 kind) private {
        mapping(bytes3 => uint256) storage accounts = _accounts[participant];
        uint256 word = accounts[currency];
        uint32 flags = word.flags();
        if (!flags.usableAs(kind)) revert ParticipantNotUsable(participant, currency, flags);
        uint256 available = word.available();
        if (available < amount) revert InsufficientAvailable(participant, currency, available, amount);
        // available is the low field and amount <= available: no borrow into other fields.
        unchecked {
            accounts[currency] = word - amount;
        }
    }

    function _credit(address participant, bytes3 currency, uint256 amount, uint32 kind) private {
        mapping(bytes3 => uint256) storage accounts = _accounts[participant];
        uint256 word = accounts[currency];
        uint32 flags = word.flags();
        if (!flags.usableAs(kind)) revert ParticipantNotUsable(participant, currency, flags);
        if (word.available() + amount > PackedAccount.AMOUNT_MAX) {
            revert PackedAccount.AccountBalanceOverflow(word.available() + amount);
        }
        // available stays within its 112-bit field (checked just above): no carry out of it.
        unchecked {
            accounts[currency] = word + amount;
        }
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

    /// @dev Settles or refunds each position as asked, zeroing its leaf and adding its legs to
    /// the batch's net per currency; returns whether any position stays open.
    function _applyBatch(
        BatchItem[] calldata items,
        bytes32[] memory leaves,
        CheckedQuote[] memory checked,
        CurrencyDeltas.Deltas memory deltas
    ) private returns (bool open) {
        for (uint256 i; i < items.length; ++i) {
            BatchItem calldata item = items[i];
            Action action = item.action;
            if (action == Action.Keep) {
                open = true;
                continue;
            }
            if (action == Action.Settle) {
                if (item.quoteIndex >= checked.length) {
                    revert BatchQuoteIndexOutOfRange(item.quoteIndex, checked.length);
                }
                Terms calldata ins = item.terms;
                (uint256 buyAmount, uint256 fee) = _settle(ins, checked[item.quoteIndex]);
                int256 sellAmount = int256(uint256(ins.sellAmount));
                // Debtor's escrow out, liquidity provider and fee account in; then the buy leg.
                deltas.add(ins.sellCurrency, -sellAmount + (sellAmount - int256(fee)) + int256(fee));
                deltas.add(ins.buyCurrency, -int256(buyAmount) + int256(buyAmount));
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
