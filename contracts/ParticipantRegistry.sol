// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";

import {ISettlementVault} from "./interfaces/ISettlementVault.sol";
import {AccountFlags} from "./libraries/AccountFlags.sol";
import {Conversion} from "./libraries/Conversion.sol";
import {PackedAccount} from "./libraries/PackedAccount.sol";
import {Currency, Participant, ParticipantKind} from "./types/Settlement.sol";

/// @title Corridor's participant registry
/// @notice The currencies the vault settles and the participants it serves: listing,
/// registration, the currencies each is enabled for, freezing and deactivation. Each
/// participant's status is mirrored into the flags of its accounts, which settlement reads
/// with the balances in one slot. The settlement vault builds on it.
abstract contract ParticipantRegistry is ISettlementVault, AccessControl {
    using AccountFlags for uint32;
    using PackedAccount for uint256;

    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");

    uint256 public constant CURRENCIES_MAX = 32;

    /// @notice The ledger account that receives every fee leg. Fixed for the vault's life, so
    /// that settlements read it from code rather than storage.
    address public immutable feeAccount;

    bytes3[] internal _currencyCodes;
    mapping(bytes3 currency => Currency) internal _currencies;
    mapping(address participant => Participant) internal _participants;
    /// @dev Per participant and currency: available and escrowed balances and the account's
    /// flags, packed in one word (see PackedAccount).
    mapping(address participant => mapping(bytes3 currency => uint256 packed)) internal _accounts;

    /// @param feeAccount_ The ledger account that receives fee legs.
    constructor(address feeAccount_) {
        if (feeAccount_ == address(0)) revert VaultZeroAddress();
        feeAccount = feeAccount_;
    }

    /// @inheritdoc ISettlementVault
    function listCurrency(bytes3 currency, address token) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (token == address(0)) revert VaultZeroAddress();
        if (_currencies[currency].listed) revert CurrencyAlreadyListed(currency);
        if (_currencyCodes.length >= CURRENCIES_MAX) revert CurrencyLimitReached(CURRENCIES_MAX);
        if (!_isCurrencyCode(currency)) revert CurrencyUnknown(currency);
        uint8 decimals = IERC20Metadata(token).decimals();
        if (decimals > Conversion.DECIMALS_MAX) revert CurrencyDecimalsUnsupported(currency, decimals);
        _currencies[currency] = Currency(token, decimals, true);
        _currencyCodes.push(currency);
        emit CurrencyListed(currency, token, decimals);
        _enable(feeAccount, currency);
    }

    /// @inheritdoc ISettlementVault
    function registerParticipant(address participant, ParticipantKind kind, bytes11 bic, bytes3[] calldata currencyList)
        external
        onlyRole(OPERATOR_ROLE)
    {
        if (participant == address(0)) revert VaultZeroAddress();
        if (kind != ParticipantKind.Bank && kind != ParticipantKind.LiquidityProvider) {
            revert ParticipantKindInvalid(kind);
        }
        if (!_isBic(bic)) revert ParticipantBicInvalid(bic);
        if (_participants[participant].kind != ParticipantKind.None) {
            revert ParticipantAlreadyRegistered(participant);
        }
        _participants[participant] = Participant(kind, true, false, bic);
        emit ParticipantRegistered(participant, kind, bic);
        for (uint256 i; i < currencyList.length; ++i) {
            _enable(participant, currencyList[i]);
        }
    }

    /// @inheritdoc ISettlementVault
    function enableCurrency(address participant, bytes3 currency) external onlyRole(OPERATOR_ROLE) {
        _enable(participant, currency);
    }

    /// @inheritdoc ISettlementVault
    function setFrozen(address participant, bool frozen) external onlyRole(OPERATOR_ROLE) {
        Participant storage p = _requireParticipant(participant);
        p.frozen = frozen;
        _syncFlags(participant, p);
        emit ParticipantFrozenSet(participant, frozen, msg.sender);
    }

    /// @inheritdoc ISettlementVault
    function setActive(address participant, bool active) external onlyRole(OPERATOR_ROLE) {
        Participant storage p = _requireParticipant(participant);
        p.active = active;
        _syncFlags(participant, p);
        emit ParticipantActiveSet(participant, active, msg.sender);
    }

    function participantOf(address participant) external view returns (Participant memory) {
        return _participants[participant];
    }

    function currencyOf(bytes3 currency) external view returns (Currency memory) {
        return _currencies[currency];
    }

    function currencies() external view returns (bytes3[] memory) {
        return _currencyCodes;
    }

    function _enable(address participant, bytes3 currency) internal {
        Participant storage p = _requireParticipant(participant);
        _requireCurrency(currency);
        uint256 word = _accounts[participant][currency];
        if (word.flags() & AccountFlags.ENABLED != 0) return;
        uint32 kindFlag = p.kind == ParticipantKind.Bank
            ? AccountFlags.BANK
            : p.kind == ParticipantKind.LiquidityProvider ? AccountFlags.LIQUIDITY_PROVIDER : AccountFlags.FEE_ACCOUNT;
        _accounts[participant][currency] = word.withFlags(AccountFlags.ENABLED | kindFlag | _statusFlags(p));
        emit ParticipantCurrencyEnabled(participant, currency);
    }

    /// @dev Mirrors the participant's status into each of its enabled accounts (bounded by
    /// CURRENCIES_MAX).
    function _syncFlags(address participant, Participant storage p) internal {
        uint32 status = _statusFlags(p);
        uint256 n = _currencyCodes.length;
        for (uint256 i; i < n; ++i) {
            bytes3 code = _currencyCodes[i];
            uint256 word = _accounts[participant][code];
            uint32 flags = word.flags();
            if (flags & AccountFlags.ENABLED != 0) {
                _accounts[participant][code] = word.withFlags((flags & ~AccountFlags.STATUS) | status);
            }
        }
    }

    function _statusFlags(Participant storage p) internal view returns (uint32 status) {
        if (p.frozen) status |= AccountFlags.FROZEN;
        if (!p.active) status |= AccountFlags.INACTIVE;
    }

    function _requireParticipant(address participant) internal view returns (Participant storage p) {
        p = _participants[participant];
        if (p.kind == ParticipantKind.None) revert ParticipantUnknown(participant);
    }

    function _requireCurrency(bytes3 currency) internal view returns (Currency memory c) {
        c = _currencies[currency];
        if (!c.listed) revert CurrencyUnknown(currency);
    }

    /// @dev Three upper-case ASCII letters.
    function _isCurrencyCode(bytes3 code) internal pure returns (bool) {
        for (uint256 i; i < 3; ++i) {
            if (code[i] < "A" || code[i] > "Z") return false;
        }
        return true;
    }

    /// @dev 8 or 11 characters of A-Z and 0-9, zero-padded: the ISO 9362 shape.
    function _isBic(bytes11 bic) internal pure returns (bool) {
        // A counter that starts at zero.
        // slither-disable-next-line uninitialized-local
        uint256 length;
        for (uint256 i; i < 11; ++i) {
            bytes1 c = bic[i];
            if (c == 0) break;
            if (!((c >= "A" && c <= "Z") || (c >= "0" && c <= "9"))) return false;
            ++length;
        }
        for (uint256 i = length; i < 11; ++i) {
            if (bic[i] != 0) return false;
        }
        return length == 8 || length == 11;
    }
}
