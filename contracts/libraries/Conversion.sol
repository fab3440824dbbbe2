// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

/// @notice The one conversion of Corridor, mirrored exactly by `settlement/conversion.py`.
/// @dev The fee is taken from the sell amount and rounded down; the rest is converted at
/// `rate` (18 decimals, major units of buy per major unit of sell) and rounded down. Both
/// roundings favour the liquidity provider, who receives `sellAmount - fee` and pays
/// `buyAmount`.
library Conversion {
    uint256 internal constant RATE_SCALE = 1e18;
    uint256 internal constant BPS = 10_000;
    uint8 internal constant DECIMALS_MAX = 18;

    /// @param sellAmount Minor units of the sell currency, at most 2**128 - 1.
    /// @param rate 18-decimal rate, at most 2**128 - 1.
    /// @param feeBps Fee in basis points, at most 10_000.
    /// @param sellDecimals Exponent of the sell currency, at most 18.
    /// @param buyDecimals Exponent of the buy currency, at most 18.
    function convert(uint256 sellAmount, uint256 rate, uint256 feeBps, uint8 sellDecimals, uint8 buyDecimals)
        internal
        pure
        returns (uint256 buyAmount, uint256 fee)
    {
        (uint256 multiplier, uint256 divisor) = scale(rate, sellDecimals, buyDecimals);
        return convertScaled(sellAmount, feeBps, multiplier, divisor);
    }

    /// @notice The rate and both exponents as one fraction, so that a quote that prices many
    /// instructions computes it once: buy = (sell - fee) * multiplier / divisor.
    function scale(uint256 rate, uint8 sellDecimals, uint8 buyDecimals)
        internal
        pure
        returns (uint256 multiplier, uint256 divisor)
    {
        unchecked {
            // Decimals are at most 18 (callers check), so 10**d < 2**60; with rate < 2**128 the
            // multiplier fits in 188 bits and the divisor in 120.
            multiplier = rate * 10 ** buyDecimals;
            divisor = RATE_SCALE * 10 ** sellDecimals;
        }
    }

    /// @notice `convert` with the fraction from `scale`.
    function convertScaled(uint256 sellAmount, uint256 feeBps, uint256 multiplier, uint256 divisor)
        internal
        pure
        returns (uint256 buyAmount, uint256 fee)
    {
        fee = sellAmount * feeBps / BPS;
        uint256 net = sellAmount - fee;
        unchecked {
            // The common case: the product fits in 256 bits (checked by dividing back), so a
            // plain floor division gives the same result as the 512-bit mulDiv below.
            uint256 product = net * multiplier;
            if (net == 0 || product / net == multiplier) return (product / divisor, fee);
        }
        buyAmount = Math.mulDiv(net, multiplier, divisor);
    }
}
