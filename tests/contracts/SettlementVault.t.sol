// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

import {SettlementAsset} from "../../contracts/SettlementAsset.sol";
import {SettlementVault} from "../../contracts/SettlementVault.sol";
import {ISettlementVault} from "../../contracts/interfaces/ISettlementVault.sol";
import {AccountFlags} from "../../contracts/libraries/AccountFlags.sol";
import {Conversion} from "../../contracts/libraries/Conversion.sol";
import {PackedAccount} from "../../contracts/libraries/PackedAccount.sol";
import {
    Action,
    BatchItem,
    Instruction,
    ParticipantKind,
    Quote,
    RatePoint,
    Signature,
    SignedQuote,
    Terms
} from "../../contracts/types/Settlement.sol";
import {Fixture} from "./utils/Fixture.sol";

contract NineteenDecimals {
    function decimals() external pure returns (uint8) {
        return 19;
    }
}

contract SettlementVaultTest is Fixture {
    bytes32 internal constant ID = bytes32(uint256(0xA1));
    uint128 internal constant AMOUNT = 1_000_00; // 1,000.00 USD

    // ------------------------------------------------------------------ constructor

    function test_constructor_setsConfigAndFeeAccount() public view {
        vm.assertEq(vault.feeAccount(), feeAccount, "fee account");
        vm.assertEq(vault.config().quoteSigner, oracle, "quote signer");
        vm.assertEq(uint256(vault.config().bandBps), BAND_BPS, "band");
        vm.assertTrue(vault.hasRole(vault.DEFAULT_ADMIN_ROLE(), admin), "admin");
        vm.assertEq(uint256(vault.participantOf(feeAccount).kind), uint256(ParticipantKind.FeeAccount), "fee kind");
    }

    function test_constructor_revertsOnZeroAddress() public {
        vm.expectRevert(ISettlementVault.VaultZeroAddress.selector);
        new SettlementVault(address(0), feeAccount, oracle, BAND_BPS, RATE_MAX_AGE);
        vm.expectRevert(ISettlementVault.VaultZeroAddress.selector);
        new SettlementVault(admin, feeAccount, address(0), BAND_BPS, RATE_MAX_AGE);
    }

    function test_constructor_revertsOnBandTooWide() public {
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.VaultParameterOutOfRange.selector, 2001, 2000));
        new SettlementVault(admin, feeAccount, oracle, 2001, RATE_MAX_AGE);
    }

    // ------------------------------------------------------------------ listCurrency

    function test_listCurrency_listsWithDecimalsAndEnablesFeeAccount() public view {
        vm.assertEq(vault.currencyOf(JPY).decimals, 0, "JPY exponent");
        vm.assertEq(vault.currencyOf(USD).token, address(usd), "token");
        vm.assertEq(vault.currencies().length, 3, "count");
        vm.assertTrue(vault.accountOf(feeAccount, JPY).flags & AccountFlags.ENABLED != 0, "fee enabled");
    }

    function test_listCurrency_revertsWhenListed() public {
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.CurrencyAlreadyListed.selector, USD));
        vault.listCurrency(USD, address(usd));
    }

    function test_listCurrency_revertsOnMalformedCode() public {
        vm.prank(admin);
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.CurrencyUnknown.selector, bytes3("usd")));
        vault.listCurrency("usd", address(usd));
    }

    function test_listCurrency_revertsOnTooManyDecimals() public {
        address token = address(new NineteenDecimals());
        vm.prank(admin);
        vm.expectRevert(
            abi.encodeWithSelector(ISettlementVault.CurrencyDecimalsUnsupported.selector, bytes3("XAU"), 19)
        );
        vault.listCurrency("XAU", token);
    }

    function test_listCurrency_revertsOnZeroToken() public {
        vm.prank(admin);
        vm.expectRevert(ISettlementVault.VaultZeroAddress.selector);
        vault.listCurrency("GBP", address(0));
    }

    function test_listCurrency_revertsAtLimit() public {
        vm.startPrank(admin);
        for (uint256 i = 3; i < vault.CURRENCIES_MAX(); ++i) {
            vault.listCurrency(
                bytes3(abi.encodePacked("Q", bytes1(uint8(65 + i / 26)), bytes1(uint8(65 + i % 26)))), address(usd)
            );
        }
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.CurrencyLimitReached.selector, 32));
        vault.listCurrency("ZZZ", address(usd));
        vm.stopPrank();
    }

    function test_listCurrency_revertsForNonAdmin() public {
        bytes32 role = vault.DEFAULT_ADMIN_ROLE();
        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, operator, role)
        );
        vault.listCurrency("GBP", address(usd));
    }

    // ------------------------------------------------------------------ registerParticipant

    function test_registerParticipant_registersAndEnables() public {
        address bank = vm.addr(0xB0B);
        bytes3[] memory list = new bytes3[](1);
        list[0] = EUR;
        vm.expectEmit();
        emit ISettlementVault.ParticipantRegistered(bank, ParticipantKind.Bank, bytes11("BANKFRPP"));
        vm.prank(operator);
        vault.registerParticipant(bank, ParticipantKind.Bank, bytes11("BANKFRPP"), list);
        vm.assertEq(vault.accountOf(bank, EUR).flags, AccountFlags.ENABLED | AccountFlags.BANK, "flags");
        vm.assertEq(vault.accountOf(bank, USD).flags, 0, "not enabled for USD");
    }

    function test_registerParticipant_revertsOnInvalidKind() public {
        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(ISettlementVault.ParticipantKindInvalid.selector, ParticipantKind.FeeAccount)
        );
        vault.registerParticipant(vm.addr(0xB0B), ParticipantKind.FeeAccount, bytes11("BANKFRPP"), new bytes3[](0));
    }

    function test_registerParticipant_revertsOnInvalidBic() public {
        bytes11[4] memory bad = [bytes11("BANK"), bytes11("bankfrpp"), bytes11("BANKFRPPX"), bytes11(0)];
        for (uint256 i; i < bad.length; ++i) {
            vm.prank(operator);
            vm.expectRevert(abi.encodeWithSelector(ISettlementVault.ParticipantBicInvalid.selector, bad[i]));
            vault.registerParticipant(vm.addr(0xB0B), ParticipantKind.Bank, bad[i], new bytes3[](0));
        }
    }

    function test_registerParticipant_revertsWhenRegistered() public {
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.ParticipantAlreadyRegistered.selector, bankA));
        vault.registerParticipant(bankA, ParticipantKind.Bank, bytes11("BANKUS33"), new bytes3[](0));
    }

    function test_registerParticipant_revertsOnZeroAddress() public {
        vm.prank(operator);
        vm.expectRevert(ISettlementVault.VaultZeroAddress.selector);
        vault.registerParticipant(address(0), ParticipantKind.Bank, bytes11("BANKUS33"), new bytes3[](0));
    }

    function test_registerParticipant_revertsOnUnlistedCurrency() public {
        bytes3[] memory list = new bytes3[](1);
        list[0] = "GBP";
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.CurrencyUnknown.selector, bytes3("GBP")));
        vault.registerParticipant(vm.addr(0xB0B), ParticipantKind.Bank, bytes11("BANKFRPP"), list);
    }

    function test_registerParticipant_revertsForNonOperator() public {
        bytes32 role = vault.OPERATOR_ROLE();
        vm.prank(bankA);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, bankA, role));
        vault.registerParticipant(vm.addr(0xB0B), ParticipantKind.Bank, bytes11("BANKFRPP"), new bytes3[](0));
    }

    // ------------------------------------------------------------------ enableCurrency

    function test_enableCurrency_enablesOnce() public {
        address bank = vm.addr(0xB0B);
        vm.startPrank(operator);
        vault.registerParticipant(bank, ParticipantKind.Bank, bytes11("BANKFRPP"), new bytes3[](0));
        vault.enableCurrency(bank, JPY);
        vault.enableCurrency(bank, JPY);
        vm.stopPrank();
        vm.assertEq(vault.accountOf(bank, JPY).flags, AccountFlags.ENABLED | AccountFlags.BANK, "flags");
    }

    function test_enableCurrency_revertsForUnknownParticipant() public {
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.ParticipantUnknown.selector, vm.addr(0xB0B)));
        vault.enableCurrency(vm.addr(0xB0B), JPY);
    }

    // ------------------------------------------------------------------ setFrozen / setActive

    function test_setFrozen_blocksEscrowAndWithdrawThenUnfreezes() public {
        vm.prank(operator);
        vault.setFrozen(bankA, true);
        uint32 flags = vault.accountOf(bankA, USD).flags;
        vm.assertTrue(flags & AccountFlags.FROZEN != 0, "frozen flag mirrored");

        Instruction memory ins = instruction(ID, bankA, bankB, AMOUNT);
        Signature memory sig = signInstruction(BANK_A_KEY, ins);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.ParticipantNotUsable.selector, bankA, USD, flags));
        vault.escrow(0, ins, sig);

        vm.prank(bankA);
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.ParticipantNotUsable.selector, bankA, USD, flags));
        vault.withdraw(USD, 1, bankA);

        vm.prank(operator);
        vault.setFrozen(bankA, false);
        vm.prank(relayer);
        vault.escrow(0, ins, sig);
        vm.assertEq(escrowed(bankA, USD), AMOUNT, "escrowed after unfreeze");
    }

    function test_setFrozen_revertsForUnknownParticipant() public {
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.ParticipantUnknown.selector, vm.addr(0xB0B)));
        vault.setFrozen(vm.addr(0xB0B), true);
    }

    function test_setActive_inactiveMayWithdrawButNotEscrow() public {
        vm.prank(operator);
        vault.setActive(bankA, false);
        vm.prank(bankA);
        vault.withdraw(USD, 10_00, bankA);
        vm.assertEq(usd.balanceOf(bankA), 10_00, "withdrawn");

        Instruction memory ins = instruction(ID, bankA, bankB, AMOUNT);
        Signature memory sig = signInstruction(BANK_A_KEY, ins);
        uint32 flags = vault.accountOf(bankA, USD).flags;
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.ParticipantNotUsable.selector, bankA, USD, flags));
        vault.escrow(0, ins, sig);
    }

    // ------------------------------------------------------------------ setPaused

    function test_setPaused_stopsEveryMovement() public {
        Instruction memory ins = instruction(ID, bankA, bankB, AMOUNT);
        escrowOne(0, ins, BANK_A_KEY);
        vm.prank(operator);
        vault.setPaused(true);

        SignedQuote memory q = signedUsdEur();
        vm.prank(relayer);
        vm.expectRevert(ISettlementVault.VaultPaused.selector);
        vault.settle(0, terms(ins), q);

        vm.warp(ins.deadline + 1);
        vm.expectRevert(ISettlementVault.VaultPaused.selector);
        vault.refund(relayer, 0, terms(ins));

        Instruction memory other = instruction(bytes32(uint256(2)), bankA, bankB, AMOUNT);
        other.deadline = uint40(block.timestamp + 1 hours);
        Signature memory sig = signInstruction(BANK_A_KEY, other);
        vm.prank(relayer);
        vm.expectRevert(ISettlementVault.VaultPaused.selector);
        vault.escrow(1, other, sig);

        vm.prank(bankA);
        vm.expectRevert(ISettlementVault.VaultPaused.selector);
        vault.withdraw(USD, 1, bankA);

        vm.expectRevert(ISettlementVault.VaultPaused.selector);
        vault.deposit(bankA, USD, 1);

        vm.prank(operator);
        vault.setPaused(false);
        vault.refund(relayer, 0, terms(ins));
        vm.assertEq(escrowed(bankA, USD), 0, "refunded after unpause");
    }

    function test_setPaused_revertsForNonOperator() public {
        bytes32 role = vault.OPERATOR_ROLE();
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, relayer, role));
        vault.setPaused(true);
    }

    // ------------------------------------------------------------------ setRiskParameters / setQuoteSigner

    function test_setRiskParameters_sets() public {
        vm.prank(admin);
        vault.setRiskParameters(50, 3600);
        vm.assertEq(uint256(vault.config().bandBps), 50, "band");
        vm.assertEq(uint256(vault.config().rateMaxAge), 3600, "age");
    }

    function test_setRiskParameters_revertsOutOfRange() public {
        vm.startPrank(admin);
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.VaultParameterOutOfRange.selector, 2001, 2000));
        vault.setRiskParameters(2001, 3600);
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.VaultParameterOutOfRange.selector, 0, type(uint32).max));
        vault.setRiskParameters(50, 0);
        vm.stopPrank();
    }

    function test_setQuoteSigner_rotatesKey() public {
        Instruction memory ins = instruction(ID, bankA, bankB, AMOUNT);
        escrowOne(0, ins, BANK_A_KEY);
        address newSigner = vm.addr(0x5161);
        vm.prank(admin);
        vault.setQuoteSigner(newSigner);
        SignedQuote memory old = signedUsdEur();
        vm.prank(relayer);
        vm.expectRevert(
            abi.encodeWithSelector(ISettlementVault.QuoteSignerInvalid.selector, quoteHash(old.quote), oracle)
        );
        vault.settle(0, terms(ins), old);
        SignedQuote memory rotated = signQuote(0x5161, usdEurQuote());
        vm.prank(relayer);
        vault.settle(0, terms(ins), rotated);
    }

    function test_setQuoteSigner_revertsOnZero() public {
        vm.prank(admin);
        vm.expectRevert(ISettlementVault.VaultZeroAddress.selector);
        vault.setQuoteSigner(address(0));
    }

    // ------------------------------------------------------------------ publishReferenceRates

    function test_publishReferenceRates_storesRateTimeAndDecimals() public view {
        vm.assertEq(uint256(vault.referenceRate(USD, JPY).rate), USD_JPY, "rate");
        vm.assertEq(uint256(vault.referenceRate(USD, JPY).updatedAt), START, "time");
        vm.assertEq(uint256(vault.referenceRate(USD, JPY).sellDecimals), 2, "sell decimals");
        vm.assertEq(uint256(vault.referenceRate(USD, JPY).buyDecimals), 0, "buy decimals");
    }

    function test_publishReferenceRates_revertsOnInvalidPoints() public {
        RatePoint[] memory points = new RatePoint[](1);
        points[0] = RatePoint(USD, EUR, 0);
        vm.startPrank(oracle);
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.ReferenceRateInvalid.selector, USD, EUR, 0));
        vault.publishReferenceRates(points);
        points[0] = RatePoint(USD, USD, 1e18);
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.ReferenceRateInvalid.selector, USD, USD, 1e18));
        vault.publishReferenceRates(points);
        points[0] = RatePoint(USD, "GBP", 1e18);
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.CurrencyUnknown.selector, bytes3("GBP")));
        vault.publishReferenceRates(points);
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.BatchTooLarge.selector, 1025, 1024));
        vault.publishReferenceRates(new RatePoint[](1025));
        vm.stopPrank();
    }

    function test_publishReferenceRates_revertsForNonOracle() public {
        bytes32 role = vault.ORACLE_ROLE();
        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, operator, role)
        );
        vault.publishReferenceRates(new RatePoint[](0));
    }

    // ------------------------------------------------------------------ deposit / withdraw

    function test_deposit_creditsParticipantFromSender() public {
        vm.prank(issuer);
        usd.mint(issuer, 500);
        vm.startPrank(issuer);
        usd.approve(address(vault), 500);
        vm.expectEmit();
        emit ISettlementVault.Deposited(bankB, USD, 500, issuer);
        vault.deposit(bankB, USD, 500);
        vm.stopPrank();
        vm.assertEq(available(bankB, USD), 500, "credited");
        vm.assertEq(usd.balanceOf(address(vault)), 1_000_000_00 + 10_000_000_00 + 500, "vault holds");
    }

    function test_deposit_revertsForUnregisteredOrUnlisted() public {
        address stranger = vm.addr(0x5);
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.ParticipantNotUsable.selector, stranger, USD, 0));
        vault.deposit(stranger, USD, 1);
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.CurrencyUnknown.selector, bytes3("GBP")));
        vault.deposit(bankA, "GBP", 1);
    }

    function test_withdraw_sendsTokens() public {
        vm.expectEmit();
        emit ISettlementVault.Withdrawn(bankA, USD, 25_00, bankB);
        vm.prank(bankA);
        vault.withdraw(USD, 25_00, bankB);
        vm.assertEq(usd.balanceOf(bankB), 25_00, "received");
        vm.assertEq(available(bankA, USD), 1_000_000_00 - 25_00, "debited");
    }

    function test_withdraw_revertsBeyondAvailable() public {
        vm.prank(bankA);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISettlementVault.InsufficientAvailable.selector, bankA, USD, 1_000_000_00, 1_000_000_01
            )
        );
        vault.withdraw(USD, 1_000_000_01, bankA);
    }

    function test_withdraw_revertsToZeroAddress() public {
        vm.prank(bankA);
        vm.expectRevert(ISettlementVault.VaultZeroAddress.selector);
        vault.withdraw(USD, 1, address(0));
    }

    function test_deposit_revertsOnBalanceOverflow() public {
        vm.prank(issuer);
        usd.mint(issuer, type(uint112).max);
        vm.startPrank(issuer);
        usd.approve(address(vault), type(uint256).max);
        uint256 tooMuch = uint256(type(uint112).max) - 1_000_000_00 + 1;
        vm.expectRevert(
            abi.encodeWithSelector(PackedAccount.AccountBalanceOverflow.selector, uint256(type(uint112).max) + 1)
        );
        vault.deposit(bankA, USD, tooMuch);
        vm.stopPrank();
    }

    // ------------------------------------------------------------------ invalidateNonces

    function test_invalidateNonces_blocksSignedInstruction() public {
        Instruction memory ins = instruction(ID, bankA, bankB, AMOUNT);
        vm.prank(bankA);
        vault.invalidateNonces(ins.nonce >> 8, 1 << (ins.nonce & 0xff));
        vm.assertTrue(vault.isNonceUsed(bankA, ins.nonce), "used");
        Signature memory sig = signInstruction(BANK_A_KEY, ins);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.InstructionNonceUsed.selector, bankA, ins.nonce));
        vault.escrow(0, ins, sig);
    }

    // ------------------------------------------------------------------ escrow

    function test_escrow_movesAvailableToEscrowedAndCommits() public {
        Instruction memory ins = instruction(ID, bankA, bankB, AMOUNT);
        Signature memory sig = signInstruction(BANK_A_KEY, ins);
        vm.expectEmit();
        emit ISettlementVault.InstructionEscrowed(ID, bankA, USD, AMOUNT);
        vm.prank(relayer);
        vault.escrow(3, ins, sig);
        vm.assertEq(available(bankA, USD), 1_000_000_00 - AMOUNT, "available");
        vm.assertEq(escrowed(bankA, USD), AMOUNT, "escrowed");
        vm.assertEq(vault.slotRoot(relayer, 3), vault.termsHash(terms(ins)), "commitment");
        vm.assertTrue(vault.isNonceUsed(bankA, ins.nonce), "nonce spent");
    }

    function test_escrow_revertsOnReplay() public {
        Instruction memory ins = instruction(ID, bankA, bankB, AMOUNT);
        escrowOne(0, ins, BANK_A_KEY);
        Signature memory sig = signInstruction(BANK_A_KEY, ins);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.InstructionNonceUsed.selector, bankA, ins.nonce));
        vault.escrow(1, ins, sig);
    }

    function test_escrow_revertsWhenSignedByAnotherKey() public {
        Instruction memory ins = instruction(ID, bankA, bankB, AMOUNT);
        Signature memory sig = signInstruction(BANK_B_KEY, ins);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.InstructionSignerMismatch.selector, ID, bankA, bankB));
        vault.escrow(0, ins, sig);
    }

    function test_escrow_revertsOnTamperedInstruction() public {
        Instruction memory ins = instruction(ID, bankA, bankB, AMOUNT);
        Signature memory sig = signInstruction(BANK_A_KEY, ins);
        ins.creditor = lp;
        vm.prank(relayer);
        vm.expectRevert(); // recovers some other address: InstructionSignerMismatch with it
        vault.escrow(0, ins, sig);
        vm.assertEq(escrowed(bankA, USD), 0, "nothing moved");
    }

    function test_escrow_revertsOnHighS() public {
        // In the compact form the top bit of vs is v, so the s values above half the curve order
        // that can be written at all lie just above it; one of them must be refused as is.
        Instruction memory ins = instruction(ID, bankA, bankB, AMOUNT);
        bytes32 highS = bytes32(uint256(0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A1));
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.SignatureHighS.selector, highS));
        vault.escrow(0, ins, Signature(bytes32(uint256(1)), highS));
    }

    function test_escrow_revertsOnUnrecoverableSignature() public {
        Instruction memory ins = instruction(ID, bankA, bankB, AMOUNT);
        vm.prank(relayer);
        vm.expectRevert(ISettlementVault.SignatureInvalid.selector);
        vault.escrow(0, ins, Signature(bytes32(0), bytes32(uint256(1))));
    }

    function test_escrow_revertsOnExpiredZeroOrSameCurrency() public {
        Instruction memory ins = instruction(ID, bankA, bankB, AMOUNT);
        ins.deadline = uint40(block.timestamp - 1);
        Signature memory sig = signInstruction(BANK_A_KEY, ins);
        vm.prank(relayer);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISettlementVault.InstructionExpired.selector, ID, block.timestamp - 1, block.timestamp
            )
        );
        vault.escrow(0, ins, sig);

        ins = instruction(ID, bankA, bankB, 0);
        sig = signInstruction(BANK_A_KEY, ins);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.InstructionAmountZero.selector, ID));
        vault.escrow(0, ins, sig);

        ins = instruction(ID, bankA, bankB, AMOUNT);
        ins.buyCurrency = USD;
        sig = signInstruction(BANK_A_KEY, ins);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.InstructionSameCurrency.selector, ID, USD));
        vault.escrow(0, ins, sig);
    }

    function test_escrow_revertsBeyondAvailable() public {
        Instruction memory ins = instruction(ID, bankA, bankB, 1_000_000_01);
        Signature memory sig = signInstruction(BANK_A_KEY, ins);
        vm.prank(relayer);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISettlementVault.InsufficientAvailable.selector, bankA, USD, 1_000_000_00, 1_000_000_01
            )
        );
        vault.escrow(0, ins, sig);
    }

    function test_escrow_revertsWhenDebtorIsNotABank() public {
        Instruction memory ins = instruction(ID, lp, bankB, AMOUNT);
        Signature memory sig = signInstruction(LP_KEY, ins);
        uint32 flags = vault.accountOf(lp, USD).flags;
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.ParticipantNotUsable.selector, lp, USD, flags));
        vault.escrow(0, ins, sig);
    }

    function test_escrow_revertsOnOccupiedSlotAndReusesFreedOne() public {
        Instruction memory first = instruction(ID, bankA, bankB, AMOUNT);
        escrowOne(0, first, BANK_A_KEY);
        Instruction memory second = instruction(bytes32(uint256(2)), bankA, bankB, AMOUNT);
        Signature memory sig = signInstruction(BANK_A_KEY, second);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.SlotOccupied.selector, relayer, 0));
        vault.escrow(0, second, sig);
        // Another escrower has slots of its own.
        vm.prank(bankB);
        vault.escrow(0, second, sig);
        // Once settled, the slot is free again.
        SignedQuote memory q = signedUsdEur();
        vm.prank(relayer);
        vault.settle(0, terms(first), q);
        vm.assertEq(vault.slotRoot(relayer, 0), bytes32(uint256(1)), "free marker");
        escrowOne(0, instruction(bytes32(uint256(3)), bankA, bankB, AMOUNT), BANK_A_KEY);
    }

    function test_escrow_signatureOfAnotherDeploymentOrChainIsRejected() public {
        Instruction memory ins = instruction(ID, bankA, bankB, AMOUNT);
        Signature memory sig = signInstruction(BANK_A_KEY, ins);
        SettlementVault other = new SettlementVault(admin, feeAccount, oracle, BAND_BPS, RATE_MAX_AGE);
        vm.prank(relayer);
        vm.expectRevert(); // recovers an unrelated address: InstructionSignerMismatch
        other.escrow(0, ins, sig);

        vm.chainId(block.chainid + 1);
        vm.prank(relayer);
        vm.expectRevert();
        vault.escrow(0, ins, sig);
        vm.assertEq(escrowed(bankA, USD), 0, "nothing escrowed");
    }

    // ------------------------------------------------------------------ escrowBatch

    function test_escrowBatch_commitsOneRootForAll() public {
        Instruction[] memory list = new Instruction[](3);
        for (uint256 i; i < 3; ++i) {
            list[i] = instruction(bytes32(i + 1), bankA, bankB, AMOUNT);
        }
        escrowBatchOf(5, list, BANK_A_KEY);
        bytes32 root = keccak256(
            abi.encodePacked(
                vault.termsHash(terms(list[0])), vault.termsHash(terms(list[1])), vault.termsHash(terms(list[2]))
            )
        );
        vm.assertEq(vault.slotRoot(relayer, 5), root, "root");
        vm.assertEq(escrowed(bankA, USD), 3 * AMOUNT, "escrowed");
    }

    function test_escrowBatch_revertsOnBadSizes() public {
        vm.startPrank(relayer);
        vm.expectRevert(ISettlementVault.BatchEmpty.selector);
        vault.escrowBatch(0, new Instruction[](0), new Signature[](0));
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.BatchTooLarge.selector, 257, 256));
        vault.escrowBatch(0, new Instruction[](257), new Signature[](257));
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.BatchLengthMismatch.selector, 2, 1));
        vault.escrowBatch(0, new Instruction[](2), new Signature[](1));
        vm.stopPrank();
    }

    // ------------------------------------------------------------------ settle

    function test_settle_booksThreeLegs() public {
        Instruction memory ins = instruction(ID, bankA, bankB, AMOUNT);
        escrowOne(0, ins, BANK_A_KEY);
        (uint256 buy, uint256 fee) = vault.previewConversion(AMOUNT, USD_EUR, 5, 2, 2);
        vm.assertEq(fee, 50, "5 bps of 1000.00 is 0.50");
        vm.assertEq(buy, 919_54, "999.50 USD at 0.92 is 919.54 EUR");

        vm.expectEmit();
        emit ISettlementVault.InstructionSettled(ID, lp, bankB, EUR, uint128(buy), uint128(fee));
        SignedQuote memory q = signedUsdEur();
        vm.prank(relayer);
        vault.settle(0, terms(ins), q);

        vm.assertEq(escrowed(bankA, USD), 0, "debtor escrow left");
        vm.assertEq(available(lp, USD), 10_000_000_00 + AMOUNT - fee, "LP got sell less fee");
        vm.assertEq(available(lp, EUR), 10_000_000_00 - buy, "LP paid buy");
        vm.assertEq(available(bankB, EUR), 1_000_000_00 + buy, "creditor received");
        vm.assertEq(uint256(vault.referenceRate(USD, EUR).feesAccrued), fee, "fee accrued");
    }

    function test_settle_revertsOnSecondSettlement() public {
        Instruction memory ins = instruction(ID, bankA, bankB, AMOUNT);
        escrowOne(0, ins, BANK_A_KEY);
        SignedQuote memory q = signedUsdEur();
        vm.startPrank(relayer);
        vault.settle(0, terms(ins), q);
        bytes32 leaf = vault.termsHash(terms(ins));
        vm.expectRevert(
            abi.encodeWithSelector(ISettlementVault.SlotMismatch.selector, relayer, 0, bytes32(uint256(1)), leaf)
        );
        vault.settle(0, terms(ins), q);
        vm.stopPrank();
    }

    function test_settle_revertsOnAlteredTerms() public {
        Instruction memory ins = instruction(ID, bankA, bankB, AMOUNT);
        escrowOne(0, ins, BANK_A_KEY);
        Terms memory t = terms(ins);
        t.minBuyAmount = 0;
        t.sellAmount = AMOUNT + 1;
        SignedQuote memory q = signedUsdEur();
        bytes memory expected = abi.encodeWithSelector(
            ISettlementVault.SlotMismatch.selector, relayer, 0, vault.termsHash(terms(ins)), vault.termsHash(t)
        );
        vm.prank(relayer);
        vm.expectRevert(expected);
        vault.settle(0, t, q);
    }

    function test_settle_revertsOnQuoteProblems() public {
        Instruction memory ins = instruction(ID, bankA, bankB, AMOUNT);
        escrowOne(0, ins, BANK_A_KEY);
        Terms memory t = terms(ins);

        Quote memory quote = usdEurQuote();
        quote.expiry = uint40(block.timestamp - 1);
        SignedQuote memory q = signQuote(ORACLE_KEY, quote);
        vm.prank(relayer);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISettlementVault.QuoteExpired.selector, quoteHash(quote), block.timestamp - 1, block.timestamp
            )
        );
        vault.settle(0, t, q);

        quote = usdEurQuote();
        q = signQuote(BANK_B_KEY, quote);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.QuoteSignerInvalid.selector, quoteHash(quote), bankB));
        vault.settle(0, t, q);

        quote.buyCurrency = JPY;
        quote.rate = USD_JPY;
        q = signQuote(ORACLE_KEY, quote);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.QuotePairMismatch.selector, ID, quoteHash(quote)));
        vault.settle(0, t, q);

        quote = usdEurQuote();
        quote.feeBps = 10_001;
        q = signQuote(ORACLE_KEY, quote);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.QuoteFeeTooHigh.selector, quoteHash(quote), 10_001));
        vault.settle(0, t, q);

        quote = usdEurQuote();
        quote.rate = USD_EUR * 102 / 100;
        q = signQuote(ORACLE_KEY, quote);
        vm.prank(relayer);
        vm.expectRevert(
            abi.encodeWithSelector(ISettlementVault.RateOutOfBand.selector, USD, EUR, quote.rate, USD_EUR, BAND_BPS)
        );
        vault.settle(0, t, q);
    }

    function test_settle_revertsOnMissingOrStaleReference() public {
        Instruction memory ins = instruction(ID, bankA, bankB, AMOUNT);
        ins.buyCurrency = JPY;
        Instruction memory eurJpy = ins;
        escrowOne(0, ins, BANK_A_KEY);
        Quote memory quote = usdEurQuote();
        quote.buyCurrency = JPY;
        quote.rate = USD_JPY;

        vm.warp(START + RATE_MAX_AGE + 1);
        quote.expiry = uint40(block.timestamp + 60);
        SignedQuote memory q = signQuote(ORACLE_KEY, quote);
        vm.prank(relayer);
        vm.expectRevert(
            abi.encodeWithSelector(ISettlementVault.ReferenceRateStale.selector, USD, JPY, START, RATE_MAX_AGE)
        );
        vault.settle(0, terms(eurJpy), q);

        quote.sellCurrency = EUR;
        q = signQuote(ORACLE_KEY, quote);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.ReferenceRateMissing.selector, EUR, JPY));
        vault.settle(0, terms(eurJpy), q);
    }

    function test_settle_revertsBelowMinimumBuy() public {
        Instruction memory ins = instruction(ID, bankA, bankB, AMOUNT);
        ins.minBuyAmount = 919_55;
        escrowOne(0, ins, BANK_A_KEY);
        SignedQuote memory q = signedUsdEur();
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.BuyAmountBelowMinimum.selector, ID, 919_54, 919_55));
        vault.settle(0, terms(ins), q);
    }

    function test_settle_revertsAfterDeadline() public {
        Instruction memory ins = instruction(ID, bankA, bankB, AMOUNT);
        escrowOne(0, ins, BANK_A_KEY);
        vm.warp(ins.deadline + 1);
        Quote memory quote = usdEurQuote();
        SignedQuote memory q = signQuote(ORACLE_KEY, quote);
        vm.prank(relayer);
        vm.expectRevert(
            abi.encodeWithSelector(ISettlementVault.InstructionExpired.selector, ID, ins.deadline, ins.deadline + 1)
        );
        vault.settle(0, terms(ins), q);
    }

    function test_settle_revertsWhenCreditorFrozenOrLiquidityShort() public {
        Instruction memory ins = instruction(ID, bankA, bankB, AMOUNT);
        escrowOne(0, ins, BANK_A_KEY);
        SignedQuote memory q = signedUsdEur();

        vm.prank(operator);
        vault.setFrozen(bankB, true);
        uint32 flags = vault.accountOf(bankB, EUR).flags;
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.ParticipantNotUsable.selector, bankB, EUR, flags));
        vault.settle(0, terms(ins), q);
        vm.prank(operator);
        vault.setFrozen(bankB, false);

        vm.prank(lp);
        vault.withdraw(EUR, 10_000_000_00 - 100, lp);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.InsufficientAvailable.selector, lp, EUR, 100, 919_54));
        vault.settle(0, terms(ins), q);
    }

    function test_settle_isForTheEscrowerOnly() public {
        Instruction memory ins = instruction(ID, bankA, bankB, AMOUNT);
        escrowOne(0, ins, BANK_A_KEY);
        SignedQuote memory q = signedUsdEur();
        bytes32 leaf = vault.termsHash(terms(ins));
        vm.prank(bankB); // bankB's slot 0 is empty
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.SlotMismatch.selector, bankB, 0, bytes32(0), leaf));
        vault.settle(0, terms(ins), q);
    }

    // ------------------------------------------------------------------ refund

    function test_refund_byAnyoneAfterDeadline() public {
        Instruction memory ins = instruction(ID, bankA, bankB, AMOUNT);
        escrowOne(0, ins, BANK_A_KEY);
        vm.warp(ins.deadline + 1);
        vm.expectEmit();
        emit ISettlementVault.InstructionRefunded(ID, bankA, USD, AMOUNT, bankB);
        vm.prank(bankB);
        vault.refund(relayer, 0, terms(ins));
        vm.assertEq(available(bankA, USD), 1_000_000_00, "back");
        vm.assertEq(escrowed(bankA, USD), 0, "escrow empty");
    }

    function test_refund_beforeDeadlineOnlyByOperator() public {
        Instruction memory ins = instruction(ID, bankA, bankB, AMOUNT);
        escrowOne(0, ins, BANK_A_KEY);
        vm.prank(bankB);
        vm.expectRevert(
            abi.encodeWithSelector(ISettlementVault.RefundNotAllowed.selector, ID, ins.deadline, block.timestamp, bankB)
        );
        vault.refund(relayer, 0, terms(ins));
        vm.prank(operator);
        vault.refund(relayer, 0, terms(ins));
        vm.assertEq(escrowed(bankA, USD), 0, "refunded");
    }

    function test_refund_thenNeitherSettleNorRefundAgain() public {
        Instruction memory ins = instruction(ID, bankA, bankB, AMOUNT);
        escrowOne(0, ins, BANK_A_KEY);
        vm.prank(operator);
        vault.refund(relayer, 0, terms(ins));
        bytes32 leaf = vault.termsHash(terms(ins));
        bytes memory mismatch =
            abi.encodeWithSelector(ISettlementVault.SlotMismatch.selector, relayer, 0, bytes32(uint256(1)), leaf);
        vm.prank(operator);
        vm.expectRevert(mismatch);
        vault.refund(relayer, 0, terms(ins));
        SignedQuote memory q = signedUsdEur();
        vm.prank(relayer);
        vm.expectRevert(mismatch);
        vault.settle(0, terms(ins), q);
    }

    // ------------------------------------------------------------------ resolveBatch

    function _batchOf(uint256 n) internal returns (Instruction[] memory list) {
        list = new Instruction[](n);
        for (uint256 i; i < n; ++i) {
            list[i] = instruction(bytes32(i + 1), bankA, bankB, uint128(AMOUNT + i));
        }
        escrowBatchOf(7, list, BANK_A_KEY);
    }

    function test_resolveBatch_settlesAllAndFreesSlot() public {
        Instruction[] memory list = _batchOf(4);
        SignedQuote[] memory quotes = one(signedUsdEur());
        vm.prank(relayer);
        vault.resolveBatch(relayer, 7, items(list, Action.Settle), quotes);
        vm.assertEq(escrowed(bankA, USD), 0, "all left escrow");
        vm.assertEq(vault.slotRoot(relayer, 7), bytes32(uint256(1)), "slot free");
    }

    function test_resolveBatch_partialRefundThenSettleRest() public {
        Instruction[] memory list = _batchOf(3);
        BatchItem[] memory step = items(list, Action.Keep);
        step[1].action = Action.Refund;
        vm.prank(operator);
        vault.resolveBatch(relayer, 7, step, new SignedQuote[](0));
        vm.assertEq(escrowed(bankA, USD), AMOUNT + AMOUNT + 2, "two still escrowed");

        // Position 1 is resolved now: giving it as Keep no longer matches the commitment.
        SignedQuote[] memory quotes = one(signedUsdEur());
        BatchItem[] memory wrong = items(list, Action.Settle);
        vm.prank(relayer);
        vm.expectRevert();
        vault.resolveBatch(relayer, 7, wrong, quotes);

        BatchItem[] memory rest = items(list, Action.Settle);
        rest[1].action = Action.Resolved;
        vm.prank(relayer);
        vault.resolveBatch(relayer, 7, rest, quotes);
        vm.assertEq(escrowed(bankA, USD), 0, "none escrowed");
        vm.assertEq(vault.slotRoot(relayer, 7), bytes32(uint256(1)), "slot free");
    }

    function test_resolveBatch_revertsOnSettleByOther() public {
        Instruction[] memory list = _batchOf(2);
        SignedQuote[] memory quotes = one(signedUsdEur());
        BatchItem[] memory all = items(list, Action.Settle);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.SettleNotByEscrower.selector, relayer, operator));
        vault.resolveBatch(relayer, 7, all, quotes);
    }

    function test_resolveBatch_revertsOnQuoteIndex() public {
        Instruction[] memory list = _batchOf(2);
        SignedQuote[] memory quotes = one(signedUsdEur());
        BatchItem[] memory all = items(list, Action.Settle);
        all[1].quoteIndex = 1;
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.BatchQuoteIndexOutOfRange.selector, 1, 1));
        vault.resolveBatch(relayer, 7, all, quotes);
    }

    function test_resolveBatch_revertsOnReorderedPositions() public {
        Instruction[] memory list = _batchOf(2);
        BatchItem[] memory swapped = items(list, Action.Refund);
        (swapped[0], swapped[1]) = (swapped[1], swapped[0]);
        vm.prank(operator);
        vm.expectRevert();
        vault.resolveBatch(relayer, 7, swapped, new SignedQuote[](0));
        vm.assertEq(escrowed(bankA, USD), 2 * AMOUNT + 1, "still escrowed");
    }

    function test_resolveBatch_revertsOnEmpty() public {
        vm.prank(relayer);
        vm.expectRevert(ISettlementVault.BatchEmpty.selector);
        vault.resolveBatch(relayer, 7, new BatchItem[](0), new SignedQuote[](0));
    }

    // ------------------------------------------------------------------ collectFees

    function test_collectFees_movesAccruedFeesToFeeAccount() public {
        Instruction memory ins = instruction(ID, bankA, bankB, AMOUNT);
        escrowOne(0, ins, BANK_A_KEY);
        SignedQuote memory q = signedUsdEur();
        vm.prank(relayer);
        vault.settle(0, terms(ins), q);
        bytes3[] memory sells = new bytes3[](2);
        bytes3[] memory buys = new bytes3[](2);
        (sells[0], buys[0], sells[1], buys[1]) = (USD, EUR, USD, JPY);
        vm.expectEmit();
        emit ISettlementVault.FeesCollected(USD, EUR, 50);
        vault.collectFees(sells, buys);
        vm.assertEq(available(feeAccount, USD), 50, "fee booked");
        vm.assertEq(uint256(vault.referenceRate(USD, EUR).feesAccrued), 0, "accrual emptied");
        vm.prank(feeAccount);
        vault.withdraw(USD, 50, feeAccount);
        vm.assertEq(usd.balanceOf(feeAccount), 50, "fee withdrawn");
    }

    function test_collectFees_revertsOnLengthMismatch() public {
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.BatchLengthMismatch.selector, 1, 0));
        vault.collectFees(new bytes3[](1), new bytes3[](0));
    }

    // ------------------------------------------------------------------ views

    function test_previewConversion_revertsOutOfRange() public {
        vm.expectRevert(
            abi.encodeWithSelector(ISettlementVault.VaultParameterOutOfRange.selector, 10_001, Conversion.BPS)
        );
        vault.previewConversion(1, 1e18, 10_001, 2, 2);
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.VaultParameterOutOfRange.selector, 19, 18));
        vault.previewConversion(1, 1e18, 0, 19, 2);
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.VaultParameterOutOfRange.selector, 19, 18));
        vault.previewConversion(1, 1e18, 0, 2, 19);
        uint256 big = uint256(type(uint128).max) + 1;
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.VaultParameterOutOfRange.selector, big, big - 1));
        vault.previewConversion(big, 1e18, 0, 2, 2);
        vm.expectRevert(abi.encodeWithSelector(ISettlementVault.VaultParameterOutOfRange.selector, big, big - 1));
        vault.previewConversion(1, big, 0, 2, 2);
    }

    function test_nonceBitmap_recordsBits() public {
        Instruction memory ins = instruction(ID, bankA, bankB, AMOUNT);
        escrowOne(0, ins, BANK_A_KEY);
        vm.assertEq(vault.nonceBitmap(bankA, 0), 1 << ins.nonce, "bit");
    }

    // ------------------------------------------------------------------ SettlementAsset

    function test_asset_decimalsAreTheExponent() public view {
        vm.assertEq(uint256(jpy.decimals()), 0, "JPY");
        vm.assertEq(uint256(usd.decimals()), 2, "USD");
    }

    function test_asset_onlyIssuerMintsAndBurns() public {
        bytes32 role = usd.ISSUER_ROLE();
        vm.prank(bankA);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, bankA, role));
        usd.mint(bankA, 1);
        vm.prank(bankA);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, bankA, role));
        usd.burn(1);
        uint256 supply = usd.totalSupply();
        vm.startPrank(issuer);
        usd.mint(issuer, 7);
        usd.burn(7);
        vm.stopPrank();
        vm.assertEq(usd.totalSupply(), supply, "minted and burned");
    }

    function test_asset_revertsOnTooManyDecimals() public {
        vm.expectRevert(abi.encodeWithSelector(SettlementAsset.SettlementAssetDecimalsUnsupported.selector, 19));
        new SettlementAsset("X", "X", 19, admin, issuer);
    }
}
