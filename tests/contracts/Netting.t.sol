// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {SettlementVault} from "../../contracts/SettlementVault.sol";
import {ISettlementVault} from "../../contracts/interfaces/ISettlementVault.sol";
import {AccountFlags} from "../../contracts/libraries/AccountFlags.sol";
import {
    CycleItem,
    EscrowedItem,
    Instruction,
    ParticipantKind,
    Quote,
    RatePoint,
    Signature,
    SignedQuote,
    Terms
} from "../../contracts/types/Settlement.sol";
import {NetFixture} from "./utils/NetFixture.sol";

/// @notice A vault with a back door that books a movement nothing balances: the netting rule
/// must refuse it, which proves the rule checks the real movements.
contract UnbalancedVault is SettlementVault {
    constructor(address admin, address feeAccount_, address quoteSigner)
        SettlementVault(admin, feeAccount_, quoteSigner, 100, 1 days)
    {}

    function bookUnbalanced(address participant, bytes3 currency, int256 amount) external netted {
        _book(participant, currency, amount, 0, 0);
    }

    function bookBalanced(address from, address to, bytes3 currency, uint256 amount) external netted {
        _book(from, currency, -int256(amount), 0, 0);
        _book(to, currency, int256(amount), 0, 0);
    }
}

contract NettingTest is NetFixture {
    uint256 internal constant FEE_BPS = 5;

    /// USD per GBP, consistent with the USD to EUR and EUR to GBP rates.
    uint128 internal constant GBP_USD = uint128(uint256(1e54) / (uint256(USD_EUR) * EUR_GBP));

    function setUp() public override {
        super.setUp();
        fund(bankC, gbp, GBP, 1_000_000_00);
    }

    // ------------------------------------------------------------------ helpers

    /// A pays B in EUR from USD, B pays C in GBP from EUR, C pays A in USD from GBP: each pays
    /// on about what it receives (`usd` worth).
    function _ring3(uint128 usd) internal returns (Instruction[] memory list) {
        list = new Instruction[](3);
        uint128 eurAmount = uint128(uint256(usd) * USD_EUR / 1e18);
        list[0] = pay(bankA, bankB, USD, usd, EUR);
        list[1] = pay(bankB, bankC, EUR, eurAmount, GBP);
        list[2] = pay(bankC, bankA, GBP, uint128(uint256(eurAmount) * EUR_GBP / 1e18), USD);
    }

    function _ring3Quotes() internal view returns (SignedQuote[] memory quotes) {
        quotes = new SignedQuote[](3);
        quotes[0] = quoteOf(USD, EUR, USD_EUR, lp);
        quotes[1] = quoteOf(EUR, GBP, EUR_GBP, lp);
        quotes[2] = quoteOf(GBP, USD, GBP_USD, lp2);
    }

    function _items(Instruction[] memory list) internal view returns (CycleItem[] memory out) {
        out = new CycleItem[](list.length);
        for (uint256 i; i < list.length; ++i) {
            out[i] = item(list[i], uint16(i));
        }
    }

    function _withdrawAllBut(address who, bytes3 code, uint256 keep) internal {
        uint256 have = available(who, code);
        vm.prank(who);
        vault.withdraw(code, have - keep, who);
    }

    function _expectRevertCycle(CycleItem[] memory items, SignedQuote[] memory quotes, bytes memory err) internal {
        vm.expectRevert(err);
        vm.prank(relayer);
        vault.settleCycle(items, noEscrowed(), quotes);
    }

    function _single(Instruction memory ins) internal view returns (CycleItem[] memory items) {
        items = new CycleItem[](1);
        items[0] = item(ins, 0);
    }

    // ------------------------------------------------------------------ netting

    /// Each bank holds a tenth of what it owes: gross, none of the three could pay; a cycle
    /// settles all three, each bank's net debit covered by what the others pay it.
    function test_settleCycle_resolvesGridlockRing() public {
        SignedQuote[] memory quotes = _publishGbpUsd();
        Instruction[] memory list = _ring3(10_000_00);
        _withdrawAllBut(bankA, USD, 1_000_00);
        _withdrawAllBut(bankB, EUR, 1_000_00);
        _withdrawAllBut(bankC, GBP, 1_000_00);

        // Gross, the first escrow already fails.
        Signature memory sig = signInstruction(BANK_A_KEY, list[0]);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISettlementVault.InsufficientAvailable.selector, bankA, USD, uint256(1_000_00), uint256(10_000_00)
            )
        );
        vm.prank(relayer);
        vault.escrow(1, list[0], sig);

        (uint256 lpUsd, uint256 lp2Usd) = (available(lp, USD), available(lp2, USD));
        settleCycle(_items(list), quotes);
        // A paid 10,000 USD and received the USD C's GBP bought; B and C likewise.
        uint256 fee = uint256(10_000_00) * FEE_BPS / 10_000;
        uint256 toA = _bought(quotes[2], list[2].sellAmount);
        vm.assertEq(available(lp, USD), lpUsd + 10_000_00 - fee, "lp USD: sold to it, less the fee");
        vm.assertEq(available(lp2, USD), lp2Usd - toA, "lp2 USD: paid to A");
        vm.assertEq(available(bankA, USD), toA + 1_000_00 - 10_000_00, "A USD");
        uint256 toB = _bought(quotes[0], list[0].sellAmount);
        vm.assertEq(available(bankB, EUR), toB + 1_000_00 - list[1].sellAmount, "B EUR");
        uint256 toC = _bought(quotes[1], list[1].sellAmount);
        vm.assertEq(available(bankC, GBP), toC + 1_000_00 - list[2].sellAmount, "C GBP");
        vm.assertEq(vault.referenceRate(USD, EUR).feesAccrued, fee, "fee accrued on the pair");
        vm.assertEq(vault.config().cycles, 1, "cycle counted");
    }

    function test_settleCycle_revertsWhenNetDebitNotCovered() public {
        SignedQuote[] memory quotes = _publishGbpUsd();
        Instruction[] memory list = _ring3(10_000_00);
        _withdrawAllBut(bankA, USD, 1_000_00);
        _withdrawAllBut(bankB, EUR, 1_000_00);
        // C holds nothing: what it receives in the cycle falls short of what it pays by the fee
        // and the rounding.
        _withdrawAllBut(bankC, GBP, 0);
        uint256 netDebit = list[2].sellAmount - _bought(quotes[1], list[1].sellAmount);
        vm.assertGe(netDebit, 1, "a net debit");
        _expectRevertCycle(
            _items(list),
            quotes,
            abi.encodeWithSelector(ISettlementVault.InsufficientAvailable.selector, bankC, GBP, uint256(0), netDebit)
        );
        vm.assertEq(available(bankA, USD), 1_000_00, "nothing moved");
        vm.assertFalse(vault.isNonceUsed(bankA, list[0].nonce), "nonce not spent");
    }

    function test_settleCycle_emitsPerInstructionAndPerCycle() public {
        SignedQuote[] memory quotes = one(signedUsdEur());
        Instruction memory ins = pay(bankA, bankB, USD, 1_000_00, EUR);
        uint256 fee = uint256(1_000_00) * FEE_BPS / 10_000;
        uint256 bought = _bought(quotes[0], 1_000_00);
        vm.expectEmit();
        emit ISettlementVault.InstructionNetted(
            ins.id, 1, bankA, bankB, lp, USD, 1_000_00, EUR, uint128(bought), uint128(fee)
        );
        bytes3[] memory codes = new bytes3[](2);
        (codes[0], codes[1]) = (USD, EUR);
        uint256[] memory gross = new uint256[](2);
        (gross[0], gross[1]) = (1_000_00, bought);
        uint256[] memory net = new uint256[](2);
        (net[0], net[1]) = (1_000_00, bought);
        vm.expectEmit();
        emit ISettlementVault.CycleSettled(1, 1, codes, gross, net);
        settleCycle(_single(ins), quotes);
    }

    /// Payments both ways in one currency pair net: each bank pays only the difference.
    function test_settleCycle_netsOpposingPayments() public {
        fund(bankB, usd, USD, 1_000_00);
        fund(bankA, eur, EUR, 1_000_00);
        SignedQuote[] memory quotes = new SignedQuote[](2);
        quotes[0] = signedUsdEur();
        quotes[1] = quoteOf(EUR, USD, uint128(uint256(1e36) / USD_EUR), lp);
        CycleItem[] memory items = new CycleItem[](2);
        items[0] = item(pay(bankA, bankB, USD, 50_000_00, EUR), 0);
        items[1] = item(pay(bankB, bankA, EUR, 46_000_00, USD), 1);
        _withdrawAllBut(bankA, USD, 1_000_00);
        _withdrawAllBut(bankB, EUR, 1_000_00);
        uint256 aUsdBefore = available(bankA, USD);
        settleCycle(items, quotes);
        // A pays 50,000 USD and gets back what 46,000 EUR buys (just under 50,000 USD).
        vm.assertEq(available(bankA, USD), aUsdBefore + _bought(quotes[1], 46_000_00) - 50_000_00, "A nets");
    }

    // ------------------------------------------------------------------ escrowed positions join

    function test_settleCycle_escrowedPositionJoinsAndItsEscrowPays() public {
        Instruction memory held = pay(bankA, bankB, USD, 2_000_00, EUR);
        escrowOne(7, held, BANK_A_KEY);
        vm.assertEq(escrowed(bankA, USD), 2_000_00, "escrowed");
        EscrowedItem[] memory joining = new EscrowedItem[](1);
        joining[0] = EscrowedItem(7, terms(held), 0);
        CycleItem[] memory items = _single(pay(bankA, bankB, USD, 1_000_00, EUR));
        SignedQuote[] memory quotes = one(signedUsdEur());
        uint256 before = available(bankA, USD);
        uint256 bBefore = available(bankB, EUR);
        vm.prank(relayer);
        vault.settleCycle(items, joining, quotes);
        vm.assertEq(escrowed(bankA, USD), 0, "escrow spent");
        vm.assertEq(available(bankA, USD), before - 1_000_00, "only the new one from available");
        vm.assertEq(
            available(bankB, EUR),
            bBefore + _bought(quotes[0], 2_000_00) + _bought(quotes[0], 1_000_00),
            "creditor paid both"
        );
        vm.assertEq(vault.slotRoot(relayer, 7), bytes32(uint256(1)), "slot free");
    }

    function test_settleCycle_revertsOnEscrowedTermsNotInSlot() public {
        Instruction memory held = pay(bankA, bankB, USD, 2_000_00, EUR);
        escrowOne(7, held, BANK_A_KEY);
        Terms memory altered = terms(held);
        altered.sellAmount = 1_000_00;
        EscrowedItem[] memory joining = new EscrowedItem[](1);
        joining[0] = EscrowedItem(7, altered, 0);
        bytes32 stored = vault.slotRoot(relayer, 7);
        SignedQuote[] memory quotes = one(signedUsdEur());
        vm.expectRevert(
            abi.encodeWithSelector(ISettlementVault.SlotMismatch.selector, relayer, 7, stored, vault.termsHash(altered))
        );
        vm.prank(relayer);
        vault.settleCycle(new CycleItem[](0), joining, quotes);
    }

    // ------------------------------------------------------------------ each instruction checked as today

    function test_settleCycle_revertsOnExpiredInstruction() public {
        Instruction memory ins = pay(bankA, bankB, USD, 1_000_00, EUR);
        ins.deadline = uint40(block.timestamp - 1);
        _expectRevertCycle(
            _single(ins),
            one(signedUsdEur()),
            abi.encodeWithSelector(
                ISettlementVault.InstructionExpired.selector, ins.id, uint256(ins.deadline), block.timestamp
            )
        );
    }

    function test_settleCycle_revertsOnZeroAmount() public {
        Instruction memory ins = pay(bankA, bankB, USD, 0, EUR);
        _expectRevertCycle(
            _single(ins),
            one(signedUsdEur()),
            abi.encodeWithSelector(ISettlementVault.InstructionAmountZero.selector, ins.id)
        );
    }

    function test_settleCycle_revertsOnSameCurrency() public {
        Instruction memory ins = pay(bankA, bankB, USD, 1_000_00, USD);
        _expectRevertCycle(
            _single(ins),
            one(signedUsdEur()),
            abi.encodeWithSelector(ISettlementVault.InstructionSameCurrency.selector, ins.id, USD)
        );
    }

    function test_settleCycle_revertsOnSignatureOfAnotherBank() public {
        Instruction memory ins = pay(bankA, bankB, USD, 1_000_00, EUR);
        CycleItem[] memory items = new CycleItem[](1);
        items[0] = CycleItem(ins, signInstruction(BANK_B_KEY, ins), 0);
        _expectRevertCycle(
            items,
            one(signedUsdEur()),
            abi.encodeWithSelector(ISettlementVault.InstructionSignerMismatch.selector, ins.id, bankA, bankB)
        );
    }

    function test_settleCycle_revertsOnNonceReplayedInTheCycle() public {
        Instruction memory ins = pay(bankA, bankB, USD, 1_000_00, EUR);
        CycleItem[] memory items = new CycleItem[](2);
        items[0] = item(ins, 0);
        items[1] = items[0];
        _expectRevertCycle(
            items,
            one(signedUsdEur()),
            abi.encodeWithSelector(ISettlementVault.InstructionNonceUsed.selector, bankA, ins.nonce)
        );
    }

    function test_settleCycle_revertsOnInstructionSettledBefore() public {
        Instruction memory ins = pay(bankA, bankB, USD, 1_000_00, EUR);
        settleCycle(_single(ins), one(signedUsdEur()));
        _expectRevertCycle(
            _single(ins),
            one(signedUsdEur()),
            abi.encodeWithSelector(ISettlementVault.InstructionNonceUsed.selector, bankA, ins.nonce)
        );
    }

    function test_settleCycle_revertsBelowMinimum() public {
        Instruction memory ins = pay(bankA, bankB, USD, 1_000_00, EUR);
        ins.minBuyAmount = 1_000_00;
        uint256 bought = _bought(signedUsdEur(), 1_000_00);
        _expectRevertCycle(
            _single(ins),
            one(signedUsdEur()),
            abi.encodeWithSelector(ISettlementVault.BuyAmountBelowMinimum.selector, ins.id, bought, uint256(1_000_00))
        );
    }

    function test_settleCycle_revertsOnQuoteOfAnotherPair() public {
        Instruction memory ins = pay(bankA, bankB, USD, 1_000_00, JPY);
        SignedQuote memory q = signedUsdEur();
        _expectRevertCycle(
            _single(ins),
            one(q),
            abi.encodeWithSelector(ISettlementVault.QuotePairMismatch.selector, ins.id, quoteHash(q.quote))
        );
    }

    function test_settleCycle_revertsOnQuoteIndexOutOfRange() public {
        CycleItem[] memory items = new CycleItem[](1);
        items[0] = item(pay(bankA, bankB, USD, 1_000_00, EUR), 1);
        _expectRevertCycle(
            items,
            one(signedUsdEur()),
            abi.encodeWithSelector(ISettlementVault.BatchQuoteIndexOutOfRange.selector, 1, 1)
        );
    }

    function test_settleCycle_revertsOnExpiredQuote() public {
        SignedQuote memory q = signedUsdEur();
        CycleItem[] memory items = _single(pay(bankA, bankB, USD, 1_000_00, EUR));
        vm.warp(q.quote.expiry + 1);
        _expectRevertCycle(
            items,
            one(q),
            abi.encodeWithSelector(
                ISettlementVault.QuoteExpired.selector, quoteHash(q.quote), uint256(q.quote.expiry), block.timestamp
            )
        );
    }

    function test_settleCycle_revertsOnQuoteNotSignedByOracle() public {
        Quote memory quote = usdEurQuote();
        SignedQuote memory q = signQuote(LP_KEY, quote);
        _expectRevertCycle(
            _single(pay(bankA, bankB, USD, 1_000_00, EUR)),
            one(q),
            abi.encodeWithSelector(ISettlementVault.QuoteSignerInvalid.selector, quoteHash(quote), lp)
        );
    }

    function test_settleCycle_revertsOnRateOutOfBand() public {
        Quote memory quote = usdEurQuote();
        quote.rate = USD_EUR * 102 / 100;
        _expectRevertCycle(
            _single(pay(bankA, bankB, USD, 1_000_00, EUR)),
            one(signQuote(ORACLE_KEY, quote)),
            abi.encodeWithSelector(
                ISettlementVault.RateOutOfBand.selector, USD, EUR, uint256(quote.rate), uint256(USD_EUR), uint256(100)
            )
        );
    }

    function test_settleCycle_revertsWhenPaused() public {
        vm.prank(operator);
        vault.setPaused(true);
        _expectRevertCycle(
            _single(pay(bankA, bankB, USD, 1_000_00, EUR)),
            one(signedUsdEur()),
            abi.encodeWithSelector(ISettlementVault.VaultPaused.selector)
        );
    }

    function test_settleCycle_revertsOnFrozenCreditor() public {
        vm.prank(operator);
        vault.setFrozen(bankB, true);
        uint32 flags = vault.accountOf(bankB, EUR).flags;
        _expectRevertCycle(
            _single(pay(bankA, bankB, USD, 1_000_00, EUR)),
            one(signedUsdEur()),
            abi.encodeWithSelector(ISettlementVault.ParticipantNotUsable.selector, bankB, EUR, flags)
        );
    }

    function test_settleCycle_revertsOnLiquidityProviderAsCreditor() public {
        uint32 flags = vault.accountOf(lp, EUR).flags;
        vm.assertTrue(flags & AccountFlags.BANK == 0, "lp is no bank");
        _expectRevertCycle(
            _single(pay(bankA, lp, USD, 1_000_00, EUR)),
            one(signedUsdEur()),
            abi.encodeWithSelector(ISettlementVault.ParticipantNotUsable.selector, lp, EUR, flags)
        );
    }

    function test_settleCycle_revertsOnEmpty() public {
        _expectRevertCycle(
            new CycleItem[](0), one(signedUsdEur()), abi.encodeWithSelector(ISettlementVault.BatchEmpty.selector)
        );
    }

    function test_settleCycle_revertsOnTooLarge() public {
        uint256 max = vault.BATCH_SIZE_MAX();
        _expectRevertCycle(
            new CycleItem[](max + 1),
            one(signedUsdEur()),
            abi.encodeWithSelector(ISettlementVault.BatchTooLarge.selector, max + 1, max)
        );
    }

    // ------------------------------------------------------------------ the netting rule can fail

    function test_book_unbalancedMovementRevertsWithNettingError() public {
        UnbalancedVault unbalanced = new UnbalancedVault(admin, feeAccount, oracle);
        vm.startPrank(admin);
        unbalanced.grantRole(unbalanced.OPERATOR_ROLE(), operator);
        unbalanced.listCurrency(USD, address(usd));
        vm.stopPrank();
        bytes3[] memory codes = new bytes3[](1);
        codes[0] = USD;
        vm.startPrank(operator);
        unbalanced.registerParticipant(bankA, ParticipantKind.Bank, bytes11("BANKUS33"), codes);
        unbalanced.registerParticipant(bankB, ParticipantKind.Bank, bytes11("BANKDEFF"), codes);
        vm.stopPrank();
        vm.prank(issuer);
        usd.mint(bankA, 10_00);
        vm.startPrank(bankA);
        usd.approve(address(unbalanced), 10_00);
        unbalanced.deposit(bankA, USD, 10_00);
        vm.stopPrank();

        // Credit without a debit: the vault would owe 5 more than it holds.
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.CurrencyNotNetted.selector, USD, int256(5)));
        unbalanced.bookUnbalanced(bankA, USD, 5);
        // Debit without a credit.
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.CurrencyNotNetted.selector, USD, int256(-3)));
        unbalanced.bookUnbalanced(bankA, USD, -3);
        vm.assertEq(unbalanced.accountOf(bankA, USD).available, 10_00, "nothing booked");

        // A movement from one account to another passes the same rule.
        unbalanced.bookBalanced(bankA, bankB, USD, 4_00);
        vm.assertEq(unbalanced.accountOf(bankB, USD).available, 4_00, "moved");
    }

    // ------------------------------------------------------------------ against gross, one by one

    /// Random cycles among four banks settle to the same balances as settling each instruction
    /// gross, one by one, whenever gross can fund them.
    function testFuzz_settleCycle_matchesGrossOneByOne(uint256 seed, uint8 size) public {
        uint256 n = 1 + uint256(size) % 12;
        fund(bankD, jpy, JPY, 100_000_000);
        SignedQuote[] memory quotes = ringQuotes();
        address[4] memory banks = [bankA, bankB, bankC, bankD];
        bytes3[5] memory ring = [USD, EUR, GBP, JPY, USD];
        CycleItem[] memory items = new CycleItem[](n);
        for (uint256 i; i < n; ++i) {
            uint256 r = uint256(keccak256(abi.encode(seed, i)));
            uint256 k = r % 4;
            uint128 amount = uint128(1 + (r >> 8) % (ring[k] == JPY ? 5_000_000 : 50_000_00));
            address creditor = banks[(k + 1 + (r >> 64) % 3) % 4];
            items[i] = item(pay(banks[k], creditor, ring[k], amount, ring[k + 1]), uint16(k));
        }
        address[6] memory parties = [bankA, bankB, bankC, bankD, lp, lp2];

        uint256 snapshot = vm.snapshotState();
        for (uint256 i; i < n; ++i) {
            escrowOne(100 + i, items[i].instruction, keyOf[items[i].instruction.debtor]);
            vm.prank(relayer);
            vault.settle(100 + i, terms(items[i].instruction), quotes[items[i].quoteIndex]);
        }
        uint256[24] memory gross;
        for (uint256 p; p < 6; ++p) {
            for (uint256 c; c < 4; ++c) {
                gross[p * 4 + c] = available(parties[p], ring[c]);
            }
        }
        vm.revertToState(snapshot);

        settleCycle(items, quotes);
        for (uint256 p; p < 6; ++p) {
            for (uint256 c; c < 4; ++c) {
                vm.assertEq(available(parties[p], ring[c]), gross[p * 4 + c], "same balance as gross");
            }
        }
    }

    // ------------------------------------------------------------------ internals

    /// The ring's third pair (GBP to USD) has no reference rate in the fixture: publish it.
    function _publishGbpUsd() internal returns (SignedQuote[] memory quotes) {
        RatePoint[] memory points = new RatePoint[](1);
        points[0] = RatePoint(GBP, USD, GBP_USD);
        vm.prank(oracle);
        vault.publishReferenceRates(points);
        quotes = _ring3Quotes();
    }

    function _bought(SignedQuote memory q, uint128 sellAmount) internal view returns (uint256 bought) {
        (bought,) = vault.previewConversion(
            sellAmount,
            q.quote.rate,
            q.quote.feeBps,
            vault.currencyOf(q.quote.sellCurrency).decimals,
            vault.currencyOf(q.quote.buyCurrency).decimals
        );
    }
}
