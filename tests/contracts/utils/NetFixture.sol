// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {SettlementAsset} from "../../../contracts/SettlementAsset.sol";
import {
    CycleItem,
    EscrowedItem,
    Instruction,
    ParticipantKind,
    Quote,
    RatePoint,
    SignedQuote
} from "../../../contracts/types/Settlement.sol";
import {Fixture} from "./Fixture.sol";

/// @notice The fixture's network grown for net settlement: four banks and two liquidity
/// providers over four currencies (USD, EUR, GBP, JPY), and helpers to build cycles.
abstract contract NetFixture is Fixture {
    uint256 internal constant BANK_C_KEY = 0xBA4CC;
    uint256 internal constant BANK_D_KEY = 0xBA4CD;
    uint256 internal constant LP2_KEY = 0x12;

    bytes3 internal constant GBP = "GBP";
    uint128 internal constant EUR_GBP = 0.85e18;
    uint128 internal constant GBP_JPY = 190e18;
    uint128 internal constant JPY_USD = uint128(uint256(1e36) / USD_JPY);

    address internal bankC;
    address internal bankD;
    address internal lp2;
    SettlementAsset internal gbp;

    mapping(address bank => uint256 key) internal keyOf;

    function setUp() public virtual override {
        super.setUp();
        bankC = vm.addr(BANK_C_KEY);
        bankD = vm.addr(BANK_D_KEY);
        lp2 = vm.addr(LP2_KEY);
        (keyOf[bankA], keyOf[bankB], keyOf[bankC], keyOf[bankD]) = (BANK_A_KEY, BANK_B_KEY, BANK_C_KEY, BANK_D_KEY);
        gbp = new SettlementAsset("Corridor GBP", "GBP", 2, admin, issuer);
        vm.prank(admin);
        vault.listCurrency(GBP, address(gbp));
        bytes3[] memory all = new bytes3[](4);
        (all[0], all[1], all[2], all[3]) = (USD, EUR, JPY, GBP);
        vm.startPrank(operator);
        vault.enableCurrency(bankA, GBP);
        vault.enableCurrency(bankB, GBP);
        vault.enableCurrency(lp, GBP);
        vault.registerParticipant(bankC, ParticipantKind.Bank, bytes11("BANKGB2L"), all);
        vault.registerParticipant(bankD, ParticipantKind.Bank, bytes11("BANKJPJT"), all);
        vault.registerParticipant(lp2, ParticipantKind.LiquidityProvider, bytes11("LIQPUS33XXX"), all);
        vm.stopPrank();

        RatePoint[] memory points = new RatePoint[](4);
        points[0] = RatePoint(EUR, GBP, EUR_GBP);
        points[1] = RatePoint(GBP, JPY, GBP_JPY);
        points[2] = RatePoint(JPY, USD, JPY_USD);
        points[3] = RatePoint(GBP, EUR, uint128(uint256(1e36) / EUR_GBP));
        vm.prank(oracle);
        vault.publishReferenceRates(points);
        fund(lp, gbp, GBP, 10_000_000_00);
        fund(lp2, usd, USD, 10_000_000_00);
        fund(lp2, eur, EUR, 10_000_000_00);
        fund(lp2, gbp, GBP, 10_000_000_00);
        fund(lp2, jpy, JPY, 1_000_000_000);
    }

    /// @notice An instruction from `debtor` to `creditor` in the given pair.
    function pay(address debtor, address creditor, bytes3 sell, uint128 amount, bytes3 buy)
        internal
        returns (Instruction memory ins)
    {
        ins = instruction(keccak256(abi.encode("net", nextNonce)), debtor, creditor, amount);
        ins.sellCurrency = sell;
        ins.buyCurrency = buy;
    }

    function quoteOf(bytes3 sell, bytes3 buy, uint128 rate, address provider)
        internal
        view
        returns (SignedQuote memory)
    {
        return signQuote(
            ORACLE_KEY,
            Quote({
                sellCurrency: sell,
                buyCurrency: buy,
                rate: rate,
                feeBps: 5,
                liquidityProvider: provider,
                expiry: uint40(block.timestamp + 5 minutes)
            })
        );
    }

    /// @notice Quotes for a ring of four pairs, USD -> EUR -> GBP -> JPY -> USD, the two providers in turn.
    function ringQuotes() internal view returns (SignedQuote[] memory quotes) {
        quotes = new SignedQuote[](4);
        quotes[0] = quoteOf(USD, EUR, USD_EUR, lp);
        quotes[1] = quoteOf(EUR, GBP, EUR_GBP, lp2);
        quotes[2] = quoteOf(GBP, JPY, GBP_JPY, lp);
        quotes[3] = quoteOf(JPY, USD, JPY_USD, lp2);
    }

    function item(Instruction memory ins, uint16 quoteIndex) internal view returns (CycleItem memory) {
        return CycleItem(ins, signInstruction(keyOf[ins.debtor], ins), quoteIndex);
    }

    function noEscrowed() internal pure returns (EscrowedItem[] memory) {
        return new EscrowedItem[](0);
    }

    function settleCycle(CycleItem[] memory items, SignedQuote[] memory quotes) internal {
        vm.prank(relayer);
        vault.settleCycle(items, noEscrowed(), quotes);
    }
}
