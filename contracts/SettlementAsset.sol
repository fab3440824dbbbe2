// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title Corridor settlement asset
/// @notice A tokenized deposit in one currency: one token is one minor unit, so `decimals()`
/// is the currency's ISO 4217 exponent. Only the issuer mints (against reserves received off
/// chain) and burns (tokens it holds after a redemption). Mints and burns are the ERC-20
/// `Transfer` events from and to the zero address.
contract SettlementAsset is ERC20, AccessControl {
    bytes32 public constant ISSUER_ROLE = keccak256("ISSUER_ROLE");

    uint8 private immutable _decimals;

    error SettlementAssetDecimalsUnsupported(uint8 decimals);

    constructor(string memory name, string memory symbol, uint8 decimals_, address admin, address issuer)
        ERC20(name, symbol)
    {
        if (decimals_ > 18) revert SettlementAssetDecimalsUnsupported(decimals_);
        _decimals = decimals_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(ISSUER_ROLE, issuer);
    }

    function decimals() public view override returns (uint8) {
        return _decimals;
    }

    /// @notice Create `amount` minor units for `to`. Issuer only.
    function mint(address to, uint256 amount) external onlyRole(ISSUER_ROLE) {
        _mint(to, amount);
    }

    /// @notice Destroy `amount` of the issuer's own tokens. Issuer only.
    function burn(uint256 amount) external onlyRole(ISSUER_ROLE) {
        _burn(msg.sender, amount);
    }
}
