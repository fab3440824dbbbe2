// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Action, CycleItem, Instruction, Signature, SignedQuote} from "../../contracts/types/Settlement.sol";
import {NetFixture} from "./utils/NetFixture.sol";

/// @notice Gas of the settlement path, recorded in snapshots/ so that a change in gas shows in
/// review. Run with `forge test --isolate` (the README's test command does) so that every call
/// is its own transaction with cold storage, as on a chain. scripts/bench_gas.py measures the
/// same on anvil, as multiples of an ERC-20 transfer.
contract GasTest is NetFixture {
    function _cycle(uint256 slot, bytes32 id) internal returns (Instruction memory ins) {
        ins = instruction(id, bankA, bankB, 1_234_56);
        Signature memory sig = signInstruction(BANK_A_KEY, ins);
        vm.prank(relayer);
        vault.escrow(slot, ins, sig);
    }

    function test_gas_singleSteadyState() public {
        // First use of the slot and of the nonce word.
        Instruction memory first = _cycle(0, bytes32(uint256(1)));
        SignedQuote memory q = signedUsdEur();
        vm.prank(relayer);
        vault.settle(0, terms(first), q);

        Instruction memory ins = instruction(bytes32(uint256(2)), bankA, bankB, 1_234_56);
        Signature memory sig = signInstruction(BANK_A_KEY, ins);
        vm.prank(relayer);
        vault.escrow(0, ins, sig);
        vm.snapshotGasLastCall("escrow");
        vm.prank(relayer);
        vault.settle(0, terms(ins), q);
        vm.snapshotGasLastCall("settle");

        vm.prank(issuer);
        usd.mint(bankA, 100);
        vm.prank(issuer);
        usd.mint(bankB, 100);
        vm.prank(bankA);
        usd.transfer(bankB, 10);
        vm.snapshotGasLastCall("T_erc20_transfer");
    }

    function test_gas_batch100() public {
        Instruction[] memory list = new Instruction[](100);
        for (uint256 i; i < 100; ++i) {
            list[i] = instruction(bytes32(i + 1), bankA, bankB, uint128(1_000_00 + i));
        }
        Signature[] memory sigs = new Signature[](100);
        for (uint256 i; i < 100; ++i) {
            sigs[i] = signInstruction(BANK_A_KEY, list[i]);
        }
        SignedQuote[] memory quotes = one(signedUsdEur());
        vm.prank(relayer);
        vault.escrowBatch(9, list, sigs);
        vm.snapshotGasLastCall("escrowBatch100");
        vm.prank(relayer);
        vault.resolveBatch(relayer, 9, items(list, Action.Settle), quotes);
        vm.snapshotGasLastCall("resolveBatch100");
    }

    function test_gas_net1() public {
        SignedQuote[] memory quotes = one(signedUsdEur());
        CycleItem[] memory items = new CycleItem[](1);
        // The bank's nonce word has been used before: steady state.
        items[0] = item(pay(bankA, bankB, USD, 1_234_56, EUR), 0);
        settleCycle(items, quotes);
        items[0] = item(pay(bankA, bankB, USD, 1_234_56, EUR), 0);
        settleCycle(items, quotes);
        vm.snapshotGasLastCall("net1");
    }

    /// @notice 100 instructions among four banks and two liquidity providers over four
    /// currencies: a ring A -> B -> C -> D -> A in USD, EUR, GBP and JPY.
    function test_gas_net100() public {
        SignedQuote[] memory quotes = ringQuotes();
        address[4] memory banks = [bankA, bankB, bankC, bankD];
        bytes3[5] memory ring = [USD, EUR, GBP, JPY, USD];
        fund(bankC, gbp, GBP, 1_000_000_00);
        fund(bankD, jpy, JPY, 100_000_000);
        CycleItem[] memory items = new CycleItem[](100);
        for (uint256 i; i < 100; ++i) {
            uint256 k = i % 4;
            uint128 amount = ring[k] == JPY ? uint128(150_000 + i) : uint128(1_000_00 + i);
            items[i] = item(pay(banks[k], banks[(k + 1) % 4], ring[k], amount, ring[k + 1]), uint16(k));
        }
        settleCycle(items, quotes);
        vm.snapshotGasLastCall("net100");
    }
}
