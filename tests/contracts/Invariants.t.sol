// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {SettlementAsset} from "../../contracts/SettlementAsset.sol";
import {SettlementVault} from "../../contracts/SettlementVault.sol";
import {
    Account,
    CycleItem,
    EscrowedItem,
    Instruction,
    Quote,
    RatePoint,
    Signature,
    SignedQuote,
    Terms
} from "../../contracts/types/Settlement.sol";
import {Fixture, termsOf} from "./utils/Fixture.sol";
import {Vm} from "./utils/Vm.sol";

/// @notice Drives the vault with random escrows, settlements, refunds, deposits, withdrawals,
/// pauses, forgeries and replays, keeping ghost books the invariants compare against.
contract Handler {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    struct Open {
        Terms terms;
        uint256 slot;
        bool resolved;
    }

    SettlementVault internal immutable vault;
    SettlementAsset internal immutable usd;
    SettlementAsset internal immutable eur;
    address internal immutable relayer;
    address internal immutable operator;
    address internal immutable issuer;
    address internal immutable lp;
    address internal immutable oracle;
    uint256 internal immutable oracleKey;
    uint256[2] internal bankKeys;
    address[2] internal banks;

    Open[] public escrows;
    uint256 public nextSlot;
    uint256 public nextNonce;
    uint256 public minted;
    uint256 public forgeriesAccepted;
    uint256 public replaysAccepted;
    uint256 public movedWhilePaused;
    uint256 public resolutions;
    mapping(bytes32 id => uint256 count) public resolvedCount;
    uint256 public cyclesSettled;
    CycleItem internal _lastNetted;

    constructor(
        SettlementVault vault_,
        SettlementAsset usd_,
        SettlementAsset eur_,
        address[7] memory parties, // relayer, operator, issuer, lp, bankA, bankB, oracle
        uint256[3] memory keys // oracle, bankA, bankB
    ) {
        vault = vault_;
        usd = usd_;
        eur = eur_;
        (relayer, operator, issuer, lp) = (parties[0], parties[1], parties[2], parties[3]);
        banks = [parties[4], parties[5]];
        oracle = parties[6];
        oracleKey = keys[0];
        bankKeys = [keys[1], keys[2]];
    }

    function escrowCount() external view returns (uint256) {
        return escrows.length;
    }

    function openEscrowed(address debtor, bytes3 currency) external view returns (uint256 total) {
        for (uint256 i; i < escrows.length; ++i) {
            Open storage e = escrows[i];
            if (!e.resolved && e.terms.debtor == debtor && e.terms.sellCurrency == currency) {
                total += e.terms.sellAmount;
            }
        }
    }

    function escrow(uint256 who, uint256 amount, uint256 deadlineS) external {
        uint256 b = who % 2;
        (bytes3 sell, bytes3 buy) = b == 0 ? (bytes3("USD"), bytes3("EUR")) : (bytes3("EUR"), bytes3("USD"));
        Instruction memory ins = Instruction({
            id: keccak256(abi.encode("id", nextNonce)),
            nonce: nextNonce++,
            debtor: banks[b],
            creditor: banks[1 - b],
            sellCurrency: sell,
            sellAmount: uint128(1 + amount % 50_000_00),
            buyCurrency: buy,
            minBuyAmount: 0,
            deadline: uint40(block.timestamp + 1 + deadlineS % 2 hours),
            detailsHash: bytes32(0)
        });
        (bytes32 r, bytes32 vs) = vm.signCompact(bankKeys[b], vault.instructionDigest(ins));
        uint256 slot = nextSlot++;
        (Account memory before, bool paused) = (vault.accountOf(ins.debtor, sell), vault.config().paused);
        vm.prank(relayer);
        try vault.escrow(slot, ins, Signature(r, vs)) {
            if (paused) movedWhilePaused++;
            escrows.push(Open(termsOf(ins), slot, false));
        } catch {
            Account memory afterwards = vault.accountOf(ins.debtor, sell);
            if (afterwards.available != before.available) movedWhilePaused++;
        }
    }

    /// A relayer escrows an instruction that names a debtor but is signed by the other bank.
    function forge(uint256 who, uint256 amount) external {
        uint256 b = who % 2;
        Instruction memory ins = Instruction({
            id: keccak256(abi.encode("forged", nextNonce)),
            nonce: nextNonce++,
            debtor: banks[b],
            creditor: banks[1 - b],
            sellCurrency: b == 0 ? bytes3("USD") : bytes3("EUR"),
            sellAmount: uint128(1 + amount % 1_000_00),
            buyCurrency: b == 0 ? bytes3("EUR") : bytes3("USD"),
            minBuyAmount: 0,
            deadline: uint40(block.timestamp + 1 hours),
            detailsHash: bytes32(0)
        });
        (bytes32 r, bytes32 vs) = vm.signCompact(bankKeys[1 - b], vault.instructionDigest(ins));
        vm.prank(relayer);
        try vault.escrow(nextSlot++, ins, Signature(r, vs)) {
            forgeriesAccepted++;
        } catch {}
    }

    /// A relayer settles a net cycle of up to four instructions between the banks, now and then
    /// with one signed by the wrong bank or one that a cycle settled before.
    function cycle(uint256 seed, uint8 size, uint8 mischief) external {
        uint256 n = 1 + size % 4;
        CycleItem[] memory items = new CycleItem[](n);
        bool forged = mischief % 7 == 1;
        bool replayed = mischief % 7 == 2 && _lastNetted.instruction.debtor != address(0);
        for (uint256 i; i < n; ++i) {
            uint256 b = uint256(keccak256(abi.encode(seed, i))) % 2;
            Instruction memory ins = _instruction(b, 1 + (seed >> (8 * i)) % 30_000_00, "netted");
            uint256 key = forged && i == 0 ? bankKeys[1 - b] : bankKeys[b];
            (bytes32 r, bytes32 vs) = vm.signCompact(key, vault.instructionDigest(ins));
            items[i] = CycleItem(ins, Signature(r, vs), b == 0 ? 0 : 1);
        }
        if (replayed) items[n - 1] = _lastNetted;
        SignedQuote[] memory quotes = new SignedQuote[](2);
        quotes[0] = _quote("USD", "EUR");
        quotes[1] = _quote("EUR", "USD");
        bool paused = vault.config().paused;
        vm.prank(relayer);
        try vault.settleCycle(items, new EscrowedItem[](0), quotes) {
            if (forged) forgeriesAccepted++;
            if (paused) movedWhilePaused++;
            for (uint256 i; i < n; ++i) {
                if (++resolvedCount[items[i].instruction.id] > 1) replaysAccepted++;
            }
            _lastNetted = items[0];
            cyclesSettled++;
        } catch {}
    }

    function _instruction(uint256 b, uint256 amount, string memory tag) internal returns (Instruction memory) {
        return Instruction({
            id: keccak256(abi.encode(tag, nextNonce)),
            nonce: nextNonce++,
            debtor: banks[b],
            creditor: banks[1 - b],
            sellCurrency: b == 0 ? bytes3("USD") : bytes3("EUR"),
            sellAmount: uint128(amount),
            buyCurrency: b == 0 ? bytes3("EUR") : bytes3("USD"),
            minBuyAmount: 0,
            deadline: uint40(block.timestamp + 1 hours),
            detailsHash: bytes32(0)
        });
    }

    function settle(uint256 index) external {
        if (escrows.length == 0) return;
        Open storage e = escrows[index % escrows.length];
        SignedQuote memory q = _quote(e.terms.sellCurrency, e.terms.buyCurrency);
        bool paused = vault.config().paused;
        vm.prank(relayer);
        try vault.settle(e.slot, e.terms, q) {
            _resolved(e, paused);
        } catch {}
    }

    function refund(uint256 index, bool asOperator) external {
        if (escrows.length == 0) return;
        Open storage e = escrows[index % escrows.length];
        bool paused = vault.config().paused;
        vm.prank(asOperator ? operator : lp);
        try vault.refund(relayer, e.slot, e.terms) {
            _resolved(e, paused);
        } catch {}
    }

    function deposit(uint256 who, uint256 amount) external {
        amount = 1 + amount % 1_000_000_00;
        address to = banks[who % 2];
        (SettlementAsset token, bytes3 code) = who % 4 < 2 ? (usd, bytes3("USD")) : (eur, bytes3("EUR"));
        vm.startPrank(issuer);
        token.mint(issuer, amount);
        minted += amount;
        token.approve(address(vault), amount);
        bool paused = vault.config().paused;
        try vault.deposit(to, code, amount) {
            if (paused) movedWhilePaused++;
        } catch {}
        vm.stopPrank();
    }

    function withdraw(uint256 who, uint256 amount) external {
        address from = banks[who % 2];
        bytes3 code = who % 4 < 2 ? bytes3("USD") : bytes3("EUR");
        amount = amount % (vault.accountOf(from, code).available + 1);
        bool paused = vault.config().paused;
        vm.prank(from);
        try vault.withdraw(code, amount, from) {
            if (paused && amount != 0) movedWhilePaused++;
        } catch {}
    }

    function setPaused(bool paused) external {
        vm.prank(operator);
        vault.setPaused(paused);
    }

    function warp(uint256 seconds_) external {
        vm.warp(block.timestamp + seconds_ % 3 hours);
        // Keep reference rates fresh enough to settle most of the time.
        if (seconds_ % 5 == 0) _republish();
    }

    function _resolved(Open storage e, bool paused) internal {
        if (paused) movedWhilePaused++;
        if (e.resolved) replaysAccepted++;
        e.resolved = true;
        resolutions++;
        resolvedCount[e.terms.id]++;
    }

    function _quote(bytes3 sell, bytes3 buy) internal view returns (SignedQuote memory signed) {
        signed.quote = Quote({
            sellCurrency: sell,
            buyCurrency: buy,
            rate: vault.referenceRate(sell, buy).rate,
            feeBps: 3,
            liquidityProvider: lp,
            expiry: uint40(block.timestamp + 60)
        });
        (bytes32 r, bytes32 vs) = vm.signCompact(oracleKey, vault.quoteDigest(signed));
        signed.signature = Signature(r, vs);
    }

    /// Publishes the same reference rates again so that they are fresh; between
    /// publications they can go stale and settlements then fail with ReferenceRateStale.
    function _republish() internal {
        RatePoint[] memory points = new RatePoint[](2);
        points[0] = RatePoint("USD", "EUR", vault.referenceRate("USD", "EUR").rate);
        points[1] = RatePoint("EUR", "USD", vault.referenceRate("EUR", "USD").rate);
        vm.prank(oracle);
        vault.publishReferenceRates(points);
    }
}

contract InvariantsTest is Fixture {
    Handler internal handler;
    address[] internal _targets;
    uint256 internal initialSupplyUsd;
    uint256 internal initialSupplyEur;

    function setUp() public override {
        super.setUp();
        fund(bankB, usd, USD, 1_000_000_00);
        fund(bankA, eur, EUR, 1_000_000_00);
        handler = new Handler(
            vault, usd, eur, [relayer, operator, issuer, lp, bankA, bankB, oracle], [ORACLE_KEY, BANK_A_KEY, BANK_B_KEY]
        );
        initialSupplyUsd = usd.totalSupply();
        initialSupplyEur = eur.totalSupply();
        _targets.push(address(handler));
    }

    function targetContracts() public view returns (address[] memory) {
        return _targets;
    }

    function _ledgerTotal(bytes3 code) internal view returns (uint256 total) {
        address[4] memory parties = [bankA, bankB, lp, feeAccount];
        for (uint256 i; i < parties.length; ++i) {
            Account memory a = vault.accountOf(parties[i], code);
            total += uint256(a.available) + a.escrowed;
        }
        bytes3[3] memory codes = [USD, EUR, JPY];
        for (uint256 i; i < codes.length; ++i) {
            if (codes[i] != code) total += vault.referenceRate(code, codes[i]).feesAccrued;
        }
    }

    /// The handler really settles and refunds: the invariants above are not vacuous.
    function test_handler_resolvesEscrows() public {
        handler.escrow(0, 1_000_00, 3600);
        handler.escrow(1, 2_000_00, 3600);
        handler.settle(0);
        handler.refund(1, true);
        handler.settle(0); // a replay, refused
        vm.assertEq(handler.resolutions(), 2, "one settlement and one refund");
        vm.assertEq(handler.replaysAccepted(), 0, "replay refused");
        handler.forge(0, 5);
        vm.assertEq(handler.forgeriesAccepted(), 0, "forgery refused");
        handler.cycle(1, 3, 0);
        vm.assertEq(handler.cyclesSettled(), 1, "a cycle settled");
        handler.cycle(2, 1, 2); // its first instruction again
        handler.cycle(3, 1, 1); // one signed by the other bank
        vm.assertEq(handler.cyclesSettled(), 1, "the replay and the forgery refused");
        vm.assertEq(handler.replaysAccepted(), 0, "no replay");
        vm.assertEq(handler.forgeriesAccepted(), 0, "no forgery");
    }

    /// Conservation per currency: the vault's token holdings equal every available and
    /// escrowed balance plus the fees accrued on the pairs, and the ledger never holds more.
    function invariant_vaultHoldingsEqualLedger() public view {
        vm.assertEq(usd.balanceOf(address(vault)), _ledgerTotal(USD), "USD");
        vm.assertEq(eur.balanceOf(address(vault)), _ledgerTotal(EUR), "EUR");
        vm.assertEq(jpy.balanceOf(address(vault)), _ledgerTotal(JPY), "JPY");
    }

    /// Supply equals what the issuer minted (setUp plus the handler's deposits); nothing else
    /// creates or destroys tokens.
    function invariant_supplyIsMinted() public view {
        vm.assertEq(
            usd.totalSupply() + eur.totalSupply(), initialSupplyUsd + initialSupplyEur + handler.minted(), "supply"
        );
    }

    /// Escrowed balances are exactly the open escrows.
    function invariant_escrowedIsOpenEscrows() public view {
        vm.assertEq(vault.accountOf(bankA, USD).escrowed, handler.openEscrowed(bankA, USD), "bank A USD");
        vm.assertEq(vault.accountOf(bankB, EUR).escrowed, handler.openEscrowed(bankB, EUR), "bank B EUR");
    }

    /// No instruction settles or refunds twice.
    function invariant_noIdResolvesTwice() public view {
        vm.assertEq(handler.replaysAccepted(), 0, "replayed resolution");
    }

    /// Only the debtor's own signature moves the debtor's funds.
    function invariant_onlyDebtorSignatureMovesFunds() public view {
        vm.assertEq(handler.forgeriesAccepted(), 0, "forged escrow accepted");
    }

    /// While paused, nothing moves.
    function invariant_pausedMeansNothingMoves() public view {
        vm.assertEq(handler.movedWhilePaused(), 0, "moved while paused");
    }
}
