"""Measure the auditor's verifier: settle N instructions on a fresh devnet, then audit them.

    python scripts/bench_audit.py --settlements 10000 [--batch 256] [--json out.json]

The traffic is mixed: several currency pairs across the demo banks, both liquidity providers,
batches of up to ``--batch`` escrowed with ``escrowBatch`` and settled with ``resolveBatch``,
plus refunds (by the operator before the deadline, and by anyone after it), a withdrawal and
a fee collection. Printed: the time the traffic took to send, then the audit's own time
(logs, transactions, replay, state, bytecode: everything ``corridor audit`` does) and its
verdict, twice: with the compile reused from the build cache (the default) and afresh
(``--fresh-build``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eth_keys.datatypes import PrivateKey  # noqa: E402

from scripts.devnet import Devnet  # noqa: E402
from scripts.network import DemoParticipant, Network, build_network  # noqa: E402
from settlement.chain import Sender, connect  # noqa: E402
from settlement.chain.vault import (  # noqa: E402
    Action,
    CycleEntry,
    EscrowedEntry,
    SignedInstruction,
    SignedQuote,
    escrow_batch_calldata,
    resolve_batch_calldata,
    settle_cycle_calldata,
)
from settlement.eip712 import Instruction, Quote, Terms, new_uetr, sign  # noqa: E402

GAS_PER_POSITION = 50_000
"""Generous gas per batch position (escrow or settlement), so that no call is estimated."""


@dataclass
class Traffic:
    """Sends mixed settlement traffic to a network, as the node's relayer would."""

    network: Network
    nonces: dict[str, itertools.count[int]] = field(default_factory=dict)
    slots: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    settled: int = 0
    refunded: int = 0
    netted: int = 0

    def __post_init__(self) -> None:
        self.relayer = self.network.sender("relayer")
        self.keys = {p.address: PrivateKey(bytes.fromhex(p.key.removeprefix("0x"))) for p in self.network.participants}
        self.oracle_key = PrivateKey(bytes.fromhex(self.network.keys["oracle"].removeprefix("0x")))
        banks = self.network.banks()
        # Every (debtor, creditor, sell, buy) with the debtor holding sell and the creditor buy.
        self.routes = [
            (d, c, sell, buy)
            for d in banks
            for c in banks
            if d is not c
            for sell in d.currencies[:2]
            for buy in c.currencies[:2]
            if sell != buy
        ]
        self.route = itertools.cycle(self.routes)

    def now(self) -> int:
        return int(self.network.w3.eth.get_block("latest")["timestamp"])

    def instruction(
        self, d: DemoParticipant, c: DemoParticipant, sell: str, buy: str, deadline: int
    ) -> SignedInstruction:
        nonce = next(self.nonces.setdefault(d.address, itertools.count()))
        exponent = self.network.manifest.asset(sell).decimals
        amount = (100 + (nonce % 50) * 37) * 10**exponent * (150 if exponent == 0 else 1)
        ins = Instruction(
            id=new_uetr(),
            nonce=nonce,
            debtor=d.address,
            creditor=c.address,
            sell_currency=sell.encode(),
            sell_amount=amount,
            buy_currency=buy.encode(),
            min_buy_amount=0,
            deadline=deadline,
            details_hash=os.urandom(32),
        )
        return SignedInstruction(ins, sign(self.network.vault.domain, ins, self.keys[d.address]))

    def quote(self, sell: bytes, buy: bytes, lp: DemoParticipant, expiry: int) -> SignedQuote:
        rate = self.network.vault.reference_rate(sell.decode(), buy.decode())[0]
        q = Quote(sell, buy, rate, 5, lp.address, expiry)
        return SignedQuote(q, sign(self.network.vault.domain, q, self.oracle_key))

    def _send(self, data: bytes, positions: int) -> None:
        self.relayer.send(
            {
                "from": self.relayer.address,
                "to": self.network.manifest.vault,
                "data": "0x" + data.hex(),
                "gas": 100_000 + GAS_PER_POSITION * positions,
                "chainId": self.network.manifest.chain_id,
                "nonce": self.network.w3.eth.get_transaction_count(self.relayer.account.address, "pending"),
                "gasPrice": self.network.w3.eth.gas_price,
            }
        )

    def escrow(self, size: int, deadline: int) -> tuple[int, list[SignedInstruction]]:
        slot = next(self.slots)
        batch = [self.instruction(*next(self.route), deadline) for _ in range(size)]
        self._send(escrow_batch_calldata(slot, batch), size)
        return slot, batch

    def settle_batch(self, size: int, lp: DemoParticipant) -> None:
        """Escrow ``size`` instructions in one call and settle them all in another."""
        now = self.now()
        slot, batch = self.escrow(size, now + 3600)
        quotes: dict[tuple[bytes, bytes], int] = {}
        signed: list[SignedQuote] = []
        items: list[tuple[Terms, Action, int]] = []
        for s in batch:
            pair = (s.instruction.sell_currency, s.instruction.buy_currency)
            if pair not in quotes:
                quotes[pair] = len(signed)
                signed.append(self.quote(*pair, lp, now + 600))
            items.append((s.instruction.terms(), Action.SETTLE, quotes[pair]))
        self._send(resolve_batch_calldata(self.relayer.address, slot, items, signed), size)
        self.settled += size

    def settle_cycle(self, size: int, lp: DemoParticipant) -> None:
        """Settle ``size`` never-escrowed instructions in one net cycle, joined by one escrowed alone."""
        now = self.now()
        slot, (held,) = self.escrow(1, now + 3600)
        batch = [self.instruction(*next(self.route), now + 3600) for _ in range(size)]
        quotes: dict[tuple[bytes, bytes], int] = {}
        signed: list[SignedQuote] = []

        def quote_index(ins: Instruction) -> int:
            pair = (ins.sell_currency, ins.buy_currency)
            if pair not in quotes:
                quotes[pair] = len(signed)
                signed.append(self.quote(*pair, lp, now + 600))
            return quotes[pair]

        entries = [CycleEntry(s, quote_index(s.instruction)) for s in batch]
        joined = [EscrowedEntry(slot, held.instruction.terms(), quote_index(held.instruction))]
        self._send(settle_cycle_calldata(entries, signed, joined), size + 1)
        self.netted += size
        self.settled += 1

    def refund_after_deadline(self, size: int) -> None:
        """Escrow ``size`` instructions due in a minute, let the deadline pass, refund them all."""
        slot, batch = self.escrow(size, self.now() + 60)
        self.network.w3.provider.make_request("evm_increaseTime", [120])  # type: ignore[arg-type]
        self.network.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        items = [(s.instruction.terms(), Action.REFUND, 0) for s in batch]
        self._send(resolve_batch_calldata(self.relayer.address, slot, items, []), size)
        self.refunded += size

    def refund_by_operator(self) -> None:
        """Escrow one instruction and have the operator refund it before its deadline."""
        slot, batch = self.escrow(1, self.now() + 3600)
        operator = self.network.sender("operator")
        operator.transact(
            self.network.vault.contract.functions.refund(
                self.relayer.address, slot, batch[0].instruction.terms().as_tuple()
            )
        )
        self.refunded += 1

    def housekeeping(self) -> None:
        """A withdrawal by a bank and a collection of the fees accrued so far."""
        bank = self.network.banks()[0]
        Sender.from_key(self.network.w3, bank.key).transact(
            self.network.vault.contract.functions.withdraw(bank.currencies[0].encode(), 1_000, bank.address)
        )
        pairs = sorted({(sell.encode(), buy.encode()) for _, _, sell, buy in self.routes})
        self.relayer.transact(
            self.network.vault.contract.functions.collectFees([s for s, _ in pairs], [b for _, b in pairs])
        )

    def run(self, settlements: int, batch: int, netted: int = 0) -> None:
        """``settlements`` escrowed and settled in batches of ``batch``, then ``netted`` in net
        cycles of at most ``batch`` (each joined by one escrowed instruction), then refunds."""
        lps = self.network.lps()
        self.refund_by_operator()
        for i, start in enumerate(range(0, settlements, batch)):
            self.settle_batch(min(batch, settlements - start), lps[i % len(lps)])
            if i == 0:
                self.housekeeping()
        cycle = max(1, batch - 1)
        for i, start in enumerate(range(0, netted, cycle)):
            self.settle_cycle(min(cycle, netted - start), lps[i % len(lps)])
        self.refund_after_deadline(min(batch, 16))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--settlements", type=int, default=10_000, help="instructions to settle (default 10000)")
    parser.add_argument("--batch", type=int, default=256, help="instructions per escrowBatch/resolveBatch (max 256)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if not 1 <= args.batch <= 256 or args.settlements < 1:
        parser.error("--batch must be 1..256 and --settlements positive")

    from settlement.audit import run_audit
    from tests.conftest import ECB_RATES

    with tempfile.TemporaryDirectory() as tmp, Devnet(accounts=20) as devnet:
        manifest = Path(tmp) / "manifest.json"
        network = build_network(connect(devnet.url), manifest, rates=ECB_RATES)
        traffic = Traffic(network)
        started = time.perf_counter()
        traffic.run(args.settlements, args.batch)
        sent_s = time.perf_counter() - started
        print(f"sent {traffic.settled:,} settlements and {traffic.refunded:,} refunds in {sent_s:.1f} s")
        figures: dict[str, object] = {"settlements": traffic.settled, "refunds": traffic.refunded}
        passed = True
        for fresh in (False, True):
            report = run_audit(devnet.url, manifest, fresh_build=fresh).report
            print(f"{'fresh build' if fresh else 'cached build'}: {report.summary()}")
            figures["logs"], figures["blocks"] = report.facts["logs"], report.last_block - report.first_block + 1
            figures["audit_fresh_build_s" if fresh else "audit_s"] = round(report.elapsed_s, 2)
            passed = passed and report.passed and report.facts["settlements"] == traffic.settled
        print(json.dumps(figures))
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
