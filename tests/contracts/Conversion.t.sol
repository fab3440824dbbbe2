// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

import {Conversion} from "../../contracts/libraries/Conversion.sol";
import {Vm} from "./utils/Vm.sol";

contract ConversionTest {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
    bool public IS_TEST = true;

    function _bound(uint256 x, uint256 lo, uint256 hi) internal pure returns (uint256) {
        return lo + x % (hi - lo + 1);
    }

    function test_convert_knownFigures() public pure {
        // 1,000.00 USD at 0.92, 5 bps: fee 0.50 USD, 999.50 * 0.92 = 919.54 EUR.
        (uint256 buy, uint256 fee) = Conversion.convert(1_000_00, 0.92e18, 5, 2, 2);
        require(buy == 919_54 && fee == 50, "USD->EUR");
        // 1.00 USD at 150.123 JPY: 150 yen, the 0.123 stays with the liquidity provider.
        (buy, fee) = Conversion.convert(1_00, 150.123e18, 0, 2, 0);
        require(buy == 150 && fee == 0, "USD->JPY");
        // 1 KWD (3 decimals) at 3.25 USD.
        (buy,) = Conversion.convert(1_000, 3.25e18, 0, 3, 2);
        require(buy == 3_25, "KWD->USD");
    }

    /// The buy amount is the exact product rounded down: never more than the exact figure
    /// (the liquidity provider never pays a fraction it did not owe) and less by under one unit.
    function testFuzz_convert_roundsDownForTheLiquidityProvider(
        uint256 sellAmount,
        uint256 rate,
        uint256 feeBps,
        uint8 sellDecimals,
        uint8 buyDecimals
    ) public pure {
        sellAmount = _bound(sellAmount, 1, 1e18 * 1e3); // up to 10^15 major units at exponent 3
        rate = _bound(rate, 1e14, 1e22); // 10^-4 to 10^4
        feeBps = _bound(feeBps, 0, 10_000);
        sellDecimals = uint8(_bound(sellDecimals, 0, 18));
        buyDecimals = uint8(_bound(buyDecimals, 0, 18));
        (uint256 buy, uint256 fee) = Conversion.convert(sellAmount, rate, feeBps, sellDecimals, buyDecimals);
        require(fee <= sellAmount && fee == sellAmount * feeBps / 10_000, "fee");
        uint256 numeratorFactor = rate * 10 ** buyDecimals;
        uint256 divisor = 1e18 * 10 ** sellDecimals;
        require(buy == Math.mulDiv(sellAmount - fee, numeratorFactor, divisor), "floor of exact product");
        // (buy + 1) * divisor > (sell - fee) * factor: one more unit would be too much.
        (uint256 hi, uint256 lo) = _mul512(buy + 1, divisor);
        (uint256 hi2, uint256 lo2) = _mul512(sellAmount - fee, numeratorFactor);
        require(hi > hi2 || (hi == hi2 && lo > lo2), "not short of the floor");
    }

    /// Conversion is monotone in the amount: paying more never buys less.
    function testFuzz_convert_monotone(uint256 a, uint256 b, uint256 rate, uint8 sd, uint8 bd) public pure {
        a = _bound(a, 0, type(uint128).max);
        b = _bound(b, a, type(uint128).max);
        rate = _bound(rate, 1, type(uint128).max);
        sd = uint8(_bound(sd, 0, 18));
        bd = uint8(_bound(bd, 0, 18));
        (uint256 buyA,) = Conversion.convert(a, rate, 0, sd, bd);
        (uint256 buyB,) = Conversion.convert(b, rate, 0, sd, bd);
        require(buyA <= buyB, "monotone");
    }

    function _mul512(uint256 a, uint256 b) internal pure returns (uint256 hi, uint256 lo) {
        assembly {
            let mm := mulmod(a, b, not(0))
            lo := mul(a, b)
            hi := sub(sub(mm, lo), lt(mm, lo))
        }
    }
}
