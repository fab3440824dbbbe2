"""Measure the gas of settlement on a fresh devnet and print it as multiples of T.

T is the gas of a plain ERC-20 transfer (one of Corridor's settlement assets, an OpenZeppelin
ERC-20) to an account that already holds a balance, measured in the same run. Every other
figure is the gas of whole transactions (receipts' gasUsed, intrinsic gas included) divided
by T:

  escrow                escrow of one instruction (steady state: the relayer's slot and the
                        bank's nonce word have been used before)
  settle                settlement of that instruction: sell, buy and fee legs
  refund                refund of one instruction after its deadline, by a third party
  single_total          escrow + settle
  batch10_per_payment   escrowBatch + resolveBatch (all settled) of 10, per instruction
  batch100_per_payment  the same for 100
  net1_total            one never-escrowed instruction settled by a net cycle of one: one
                        transaction (steady state: the bank's nonce word used before)
  net100_per_payment    a net cycle of 100 instructions among the four demo banks and both
                        liquidity providers over four currencies (a ring USD -> EUR -> GBP ->
                        SGD -> USD), per instruction

Batches draw from four debtor banks paying three creditor banks in one corridor (USD to EUR)
through one liquidity provider and one quote.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.devnet import Devnet  # noqa: E402
from scripts.network import DemoParticipant, Network, build_network  # noqa: E402
from settlement.chain import connect, contract  # noqa: E402
from settlement.chain.vault import Action, CycleEntry, SignedInstruction, SignedQuote  # noqa: E402
from settlement.eip712 import Instruction, Quote, new_uetr  # noqa: E402


class Bench:
    def __init__(self, network: Network) -> None:
        self.net = network
        self.vault = network.vault
        self.relayer = network.sender("relayer")
        self.oracle = network.sender("oracle")
        self.banks = network.banks()
        self.lp = network.lps()[0]
        self.nonces: dict[str, int] = {}

    def instruction(self, debtor: int, creditor: int, deadline_s: int = 3600) -> SignedInstruction:
        payers = [b for b in self.banks if "USD" in b.currencies]
        payees = [b for b in self.banks if "EUR" in b.currencies]
        return self.payment(payers[debtor % len(payers)], payees[creditor % len(payees)], "USD", "EUR", deadline_s)

    def payment(
        self, d: DemoParticipant, c: DemoParticipant, sell: str, buy: str, deadline_s: int = 3600
    ) -> SignedInstruction:
        nonce = self.nonces.get(d.address, 0)
        self.nonces[d.address] = nonce + 1
        block = self.net.w3.eth.get_block("latest")
        ins = Instruction(
            id=new_uetr(),
            nonce=nonce,
            debtor=d.address,
            creditor=c.address,
            sell_currency=sell.encode(),
            sell_amount=1_234_56,
            buy_currency=buy.encode(),
            min_buy_amount=1_000_00 if (sell, buy) == ("USD", "EUR") else 0,
            deadline=int(block["timestamp"]) + deadline_s,
            details_hash=os.urandom(32),
        )
        return self.vault.sign_instruction(ins, d.key)

    def quote(self, sell: str = "USD", buy: str = "EUR", lp: DemoParticipant | None = None) -> SignedQuote:
        block = self.net.w3.eth.get_block("latest")
        q = Quote(
            sell_currency=sell.encode(),
            buy_currency=buy.encode(),
            rate=self.vault.contract.functions.referenceRate(sell.encode(), buy.encode()).call()[0],
            fee_bps=5,
            liquidity_provider=(lp or self.lp).address,
            expiry=int(block["timestamp"]) + 600,
        )
        return self.vault.sign_quote(q, self.net.keys["oracle"])

    def single(self, slot: int) -> tuple[int, int]:
        signed = self.instruction(0, 1)
        escrow = self.vault.escrow(self.relayer, slot, signed)["gasUsed"]
        settle = self.vault.settle(self.relayer, slot, signed.instruction.terms(), self.quote())["gasUsed"]
        return escrow, settle

    def batch(self, slot: int, n: int) -> tuple[int, int]:
        batch = [self.instruction(i, i + 1 + (i // 4) % 3) for i in range(n)]
        escrow = self.vault.escrow_batch(self.relayer, slot, batch)["gasUsed"]
        items = [(s.instruction.terms(), Action.SETTLE, 0) for s in batch]
        resolve = self.vault.resolve_batch(
            self.relayer,
            self.relayer.address,
            slot,
            items,
            [self.quote()],
        )["gasUsed"]
        return escrow, resolve

    def net1(self) -> int:
        signed = self.instruction(0, 1)
        return int(self.vault.settle_cycle(self.relayer, [CycleEntry(signed, 0)], [self.quote()])["gasUsed"])

    def net_ring(self, n: int) -> int:
        """A cycle of ``n`` instructions, each bank paying the next in a ring of four currencies."""
        by_bic = {b.bic: b for b in self.banks}
        ring = [("FATLUS33", "USD"), ("RHNLDEFF", "EUR"), ("THMSGB2L", "GBP"), ("LNCTSGSG", "SGD")]
        lps = self.net.lps()
        quotes = [self.quote(ring[k][1], ring[(k + 1) % 4][1], lps[k % len(lps)]) for k in range(4)]
        entries = []
        for i in range(n):
            (debtor, sell), (creditor, buy) = ring[i % 4], ring[(i + 1) % 4]
            entries.append(CycleEntry(self.payment(by_bic[debtor], by_bic[creditor], sell, buy), i % 4))
        return int(self.vault.settle_cycle(self.relayer, entries, quotes)["gasUsed"])

    def refund(self, slot: int) -> int:
        signed = self.instruction(0, 1, deadline_s=2)
        self.vault.escrow(self.relayer, slot, signed)
        deadline = signed.instruction.deadline
        while int(self.net.w3.eth.get_block("latest")["timestamp"]) <= deadline:
            time.sleep(0.5)
            # A block must be mined for time to pass on an automining chain: a tiny transfer.
            ticker = self.net.sender("fee")
            ticker.send(
                {
                    "to": self.relayer.address,
                    "value": 1,
                    "gas": 21000,
                    "nonce": self.net.w3.eth.get_transaction_count(ticker.account.address, "pending"),
                    "chainId": self.net.w3.eth.chain_id,
                    "gasPrice": self.net.w3.eth.gas_price,
                }
            )
        third_party = self.net.sender("fee")
        return int(self.vault.refund(third_party, self.relayer.address, slot, signed.instruction.terms())["gasUsed"])

    def token_transfer(self) -> int:
        """T: an ERC-20 transfer between two accounts that both hold a balance."""
        usd = contract(self.net.w3, "SettlementAsset", self.net.manifest.asset("USD").address)
        issuer = self.net.sender("issuer")
        a, b = self.banks[0], self.banks[1]
        issuer.transact(usd.functions.mint(a.address, 1_000_00))
        issuer.transact(usd.functions.mint(b.address, 1_000_00))
        receipt = self.net.sender(a.key).transact(usd.functions.transfer(b.address, 10_00))
        return int(receipt["gasUsed"])


def measure(network: Network) -> dict[str, object]:
    bench = Bench(network)
    t = bench.token_transfer()
    # First use of a slot and of a nonce word, then the steady state on the same slot.
    first_escrow, first_settle = bench.single(slot=0)
    escrow, settle = bench.single(slot=0)
    bench.single(slot=1)
    refund = bench.refund(slot=1)
    bench.batch(slot=2, n=10)
    b10 = bench.batch(slot=2, n=10)
    bench.batch(slot=3, n=100)
    b100 = bench.batch(slot=3, n=100)
    bench.net1()
    net1 = bench.net1()
    bench.net_ring(100)
    net100 = bench.net_ring(100)
    gas = {
        "T": t,
        "escrow": escrow,
        "settle": settle,
        "refund": refund,
        "single_total": escrow + settle,
        "batch10_per_payment": sum(b10) / 10,
        "batch100_per_payment": sum(b100) / 100,
        "net1_total": net1,
        "net100_per_payment": net100 / 100,
        "escrow_first_use": first_escrow,
        "settle_first_use": first_settle,
        "batch10_escrow": b10[0],
        "batch10_resolve": b10[1],
        "batch100_escrow": b100[0],
        "batch100_resolve": b100[1],
    }
    ratios = {k: round(v / t, 3) for k, v in gas.items() if k != "T" and not k.startswith("batch1")}
    ratios["batch10_per_payment"] = round(gas["batch10_per_payment"] / t, 3)
    ratios["batch100_per_payment"] = round(gas["batch100_per_payment"] / t, 3)
    ratios["net100_per_payment"] = round(gas["net100_per_payment"] / t, 3)
    return {"T": t, "gas": gas, "ratio_to_T": ratios}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--rpc-url", help="use this development chain (id 31337) instead of a fresh anvil")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        devnet = None if args.rpc_url else Devnet().start()
        try:
            w3 = connect(args.rpc_url or devnet.url)  # type: ignore[union-attr]
            network = build_network(w3, Path(tmp) / "manifest.json")
            result = measure(network)
        finally:
            if devnet is not None:
                devnet.stop()

    if args.json:
        print(json.dumps(result))
        return 0
    gas = result["gas"]
    ratios = result["ratio_to_T"]
    assert isinstance(gas, dict) and isinstance(ratios, dict)
    print(f"{'figure':<22}{'gas':>12}{'× T':>9}")
    print(f"{'T (ERC-20 transfer)':<22}{gas['T']:>12}{1:>9.3f}")
    for name in (
        "escrow",
        "settle",
        "refund",
        "single_total",
        "batch10_per_payment",
        "batch100_per_payment",
        "net1_total",
        "net100_per_payment",
        "escrow_first_use",
        "settle_first_use",
    ):
        print(f"{name:<22}{gas[name]:>12.0f}{ratios[name]:>9.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
