// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {SettlementAsset} from "../../../contracts/SettlementAsset.sol";
import {SettlementVault} from "../../../contracts/SettlementVault.sol";
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
} from "../../../contracts/types/Settlement.sol";
import {Vm} from "./Vm.sol";

/// @notice What an escrow of `ins` commits to: the fields settlement and refund resupply.
function termsOf(Instruction memory ins) pure returns (Terms memory) {
    return Terms(
        ins.id,
        ins.debtor,
        ins.creditor,
        ins.sellCurrency,
        ins.sellAmount,
        ins.buyCurrency,
        ins.minBuyAmount,
        ins.deadline
    );
}

/// @notice A deployed network with two banks, a liquidity provider, an oracle and three
/// currencies of different exponents (USD 2, EUR 2, JPY 0), and helpers to sign.
abstract contract Fixture {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
    bool public IS_TEST = true;

    uint256 internal constant ADMIN_KEY = 0xA11CE;
    uint256 internal constant OPERATOR_KEY = 0x0BE7;
    uint256 internal constant ORACLE_KEY = 0x0AC1E;
    uint256 internal constant ISSUER_KEY = 0x155;
    uint256 internal constant RELAYER_KEY = 0x7E1A;
    uint256 internal constant BANK_A_KEY = 0xBA4CA;
    uint256 internal constant BANK_B_KEY = 0xBA4CB;
    uint256 internal constant LP_KEY = 0x11;
    uint256 internal constant FEE_KEY = 0xFEE;

    address internal admin;
    address internal operator;
    address internal oracle;
    address internal issuer;
    address internal relayer;
    address internal bankA;
    address internal bankB;
    address internal lp;
    address internal feeAccount;

    SettlementVault internal vault;
    SettlementAsset internal usd;
    SettlementAsset internal eur;
    SettlementAsset internal jpy;

    bytes3 internal constant USD = "USD";
    bytes3 internal constant EUR = "EUR";
    bytes3 internal constant JPY = "JPY";

    uint128 internal constant USD_EUR = 0.92e18;
    uint128 internal constant USD_JPY = 150e18;
    uint16 internal constant BAND_BPS = 100;
    uint32 internal constant RATE_MAX_AGE = 1 days;
    uint256 internal constant START = 1_800_000_000;

    uint256 internal nextNonce;

    function setUp() public virtual {
        vm.warp(START);
        admin = vm.addr(ADMIN_KEY);
        operator = vm.addr(OPERATOR_KEY);
        oracle = vm.addr(ORACLE_KEY);
        issuer = vm.addr(ISSUER_KEY);
        relayer = vm.addr(RELAYER_KEY);
        bankA = vm.addr(BANK_A_KEY);
        bankB = vm.addr(BANK_B_KEY);
        lp = vm.addr(LP_KEY);
        feeAccount = vm.addr(FEE_KEY);

        vault = new SettlementVault(admin, feeAccount, oracle, BAND_BPS, RATE_MAX_AGE);
        vm.label(address(vault), "vault");
        usd = new SettlementAsset("Corridor USD", "USD", 2, admin, issuer);
        eur = new SettlementAsset("Corridor EUR", "EUR", 2, admin, issuer);
        jpy = new SettlementAsset("Corridor JPY", "JPY", 0, admin, issuer);

        vm.startPrank(admin);
        vault.grantRole(vault.OPERATOR_ROLE(), operator);
        vault.grantRole(vault.ORACLE_ROLE(), oracle);
        vault.listCurrency(USD, address(usd));
        vault.listCurrency(EUR, address(eur));
        vault.listCurrency(JPY, address(jpy));
        vm.stopPrank();

        bytes3[] memory all = new bytes3[](3);
        all[0] = USD;
        all[1] = EUR;
        all[2] = JPY;
        vm.startPrank(operator);
        vault.registerParticipant(bankA, ParticipantKind.Bank, bytes11("BANKUS33"), all);
        vault.registerParticipant(bankB, ParticipantKind.Bank, bytes11("BANKDEFF"), all);
        vault.registerParticipant(lp, ParticipantKind.LiquidityProvider, bytes11("LIQPGB2LXXX"), all);
        vm.stopPrank();

        publishRates();
        fund(bankA, usd, USD, 1_000_000_00);
        fund(bankB, eur, EUR, 1_000_000_00);
        fund(lp, usd, USD, 10_000_000_00);
        fund(lp, eur, EUR, 10_000_000_00);
        fund(lp, jpy, JPY, 1_000_000_000);
    }

    function publishRates() internal {
        RatePoint[] memory points = new RatePoint[](4);
        points[0] = RatePoint(USD, EUR, USD_EUR);
        points[1] = RatePoint(EUR, USD, uint128(uint256(1e36) / USD_EUR));
        points[2] = RatePoint(USD, JPY, USD_JPY);
        points[3] = RatePoint(JPY, USD, uint128(uint256(1e36) / USD_JPY));
        vm.prank(oracle);
        vault.publishReferenceRates(points);
    }

    function fund(address who, SettlementAsset token, bytes3 code, uint256 amount) internal {
        vm.prank(issuer);
        token.mint(who, amount);
        vm.startPrank(who);
        token.approve(address(vault), amount);
        vault.deposit(who, code, amount);
        vm.stopPrank();
    }

    function instruction(bytes32 id, address debtor, address creditor, uint128 sellAmount)
        internal
        returns (Instruction memory ins)
    {
        ins = Instruction({
            id: id,
            nonce: nextNonce++,
            debtor: debtor,
            creditor: creditor,
            sellCurrency: USD,
            sellAmount: sellAmount,
            buyCurrency: EUR,
            minBuyAmount: 0,
            deadline: uint40(block.timestamp + 1 hours),
            detailsHash: keccak256(abi.encode("beneficiary", id))
        });
    }

    function signInstruction(uint256 key, Instruction memory ins) internal view returns (Signature memory) {
        return _sign(key, vault.instructionDigest(ins));
    }

    function usdEurQuote() internal view returns (Quote memory) {
        return Quote({
            sellCurrency: USD,
            buyCurrency: EUR,
            rate: USD_EUR,
            feeBps: 5,
            liquidityProvider: lp,
            expiry: uint40(block.timestamp + 5 minutes)
        });
    }

    function signedUsdEur() internal view returns (SignedQuote memory) {
        return signQuote(ORACLE_KEY, usdEurQuote());
    }

    function terms(Instruction memory ins) internal pure returns (Terms memory) {
        return termsOf(ins);
    }

    function quoteHash(Quote memory quote) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(
                keccak256(
                    "Quote(bytes3 sellCurrency,bytes3 buyCurrency,uint128 rate,uint16 feeBps,address liquidityProvider,uint40 expiry)"
                ),
                quote
            )
        );
    }

    function available(address who, bytes3 code) internal view returns (uint256) {
        return vault.accountOf(who, code).available;
    }

    function escrowed(address who, bytes3 code) internal view returns (uint256) {
        return vault.accountOf(who, code).escrowed;
    }

    function signQuote(uint256 key, Quote memory quote) internal view returns (SignedQuote memory signed) {
        signed.quote = quote;
        signed.signature = _sign(key, vault.quoteDigest(signed));
    }

    function _sign(uint256 key, bytes32 digest) internal pure returns (Signature memory) {
        (bytes32 r, bytes32 vs) = vm.signCompact(key, digest);
        return Signature(r, vs);
    }

    function escrowOne(uint256 slot, Instruction memory ins, uint256 key) internal {
        Signature memory sig = signInstruction(key, ins);
        vm.prank(relayer);
        vault.escrow(slot, ins, sig);
    }

    function items(Instruction[] memory list, Action action) internal pure returns (BatchItem[] memory out) {
        out = new BatchItem[](list.length);
        for (uint256 i; i < list.length; ++i) {
            out[i] = BatchItem(terms(list[i]), action, 0);
        }
    }

    function escrowBatchOf(uint256 slot, Instruction[] memory list, uint256 key) internal {
        Signature[] memory sigs = new Signature[](list.length);
        for (uint256 i; i < list.length; ++i) {
            sigs[i] = signInstruction(key, list[i]);
        }
        vm.prank(relayer);
        vault.escrowBatch(slot, list, sigs);
    }

    function one(SignedQuote memory quote) internal pure returns (SignedQuote[] memory quotes) {
        quotes = new SignedQuote[](1);
        quotes[0] = quote;
    }
}
