"""Liquidity saved by net settlement cycles, measured on an anvil of its own.

Gridlock ring (n = 3 and 10): n banks, each owing the next a payment it cannot fund alone (it
holds a tenth of it), in a ring of currencies. Gross settles none (each escrow is simulated and
refused); one net cycle settles all of them in one transaction.

Realistic day: payments among six banks and the two demo liquidity providers in seven
currencies, sizes log-normal, each bank funded at a stated fraction of its gross outflow per
currency. They arrive in batches; each round the node's gridlock resolution
(:mod:`settlement.netting`) picks what the balances can fund net and one ``settleCycle`` settles
it; what is left waits for the next round. The same day is also settled gross (each payment
escrowed and settled alone once its debtor holds it, in arrival order, queued otherwise) on a
ledger that books exactly as the vault does. Printed: value settled gross and net, the liquidity
used (sum of net debits over sum of gross outflows, per currency), the payments left queued and
the transactions each way. The chain's balances are checked against the ledger at the end.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.setrecursionlimit(10_000)

from eth_account import Account as EthAccount  # noqa: E402
from web3.exceptions import ContractCustomError, ContractLogicError  # noqa: E402

from scripts.devnet import Devnet  # noqa: E402
from scripts.network import Network, build_network  # noqa: E402
from settlement.chain import connect  # noqa: E402
from settlement.chain.contracts import decode_revert  # noqa: E402
from settlement.chain.deployment import DEFAULT_CURRENCIES, fund, onboard  # noqa: E402
from settlement.chain.keys import ROLES, devnet_key  # noqa: E402
from settlement.chain.vault import CycleEntry, SignedInstruction, SignedQuote  # noqa: E402
from settlement.conversion import convert  # noqa: E402
from settlement.eip712 import Instruction, Quote, new_uetr  # noqa: E402
from settlement.netting import Account, Payment, resolve  # noqa: E402

FEE_BPS = 5
CYCLE_SIZE_MAX = 200
FIRST_EXTRA_KEY = len(ROLES) + 6  # after the operator roles and the demo participants


@dataclass
class Bank:
    bic: str
    key: str
    address: str
    currencies: tuple[str, ...]


class Bench:
    def __init__(self, network: Network) -> None:
        self.net = network
        self.vault = network.vault
        self.relayer = network.sender("relayer")
        self.lps = network.lps()
        self.decimals = {code: network.manifest.asset(code).decimals for code in DEFAULT_CURRENCIES}
        self.next_key = FIRST_EXTRA_KEY
        self.nonces: dict[str, int] = defaultdict(int)
        self.rates: dict[tuple[str, str], int] = {}

    def rate(self, sell: str, buy: str) -> int:
        if (sell, buy) not in self.rates:
            self.rates[(sell, buy)] = self.vault.reference_rate(sell, buy)[0]
        return self.rates[(sell, buy)]

    def bank(self, bic: str, currencies: tuple[str, ...], funds: dict[str, int]) -> Bank:
        key = devnet_key(self.next_key)
        self.next_key += 1
        address = str(EthAccount.from_key(key).address)
        onboard(self.net.w3, self.net.manifest, self.net.keys["operator"], address, "bank", bic, currencies)
        for code, amount in funds.items():
            if amount > 0:
                fund(self.net.w3, self.net.manifest, self.net.keys["issuer"], address, code, amount)
        return Bank(bic, key, address, currencies)

    def quote(self, sell: str, buy: str, lp_index: int) -> SignedQuote:
        now = int(self.net.w3.eth.get_block("latest")["timestamp"])
        lp = self.lps[lp_index % len(self.lps)]
        q = Quote(sell.encode(), buy.encode(), self.rate(sell, buy), FEE_BPS, lp.address, now + 3600)
        return self.vault.sign_quote(q, self.net.keys["oracle"])

    def price(self, key: str, debtor: Bank, creditor: Bank, sell: str, amount: int, buy: str, lp: int) -> Payment:
        figures = convert(amount, self.rate(sell, buy), FEE_BPS, self.decimals[sell], self.decimals[buy])
        lp_address = self.lps[lp % len(self.lps)].address
        return Payment(
            key, debtor.address, creditor.address, sell, amount, buy, figures.buy_amount, figures.fee, lp_address
        )

    def sign(self, p: Payment, debtor: Bank) -> SignedInstruction:
        nonce = self.nonces[p.debtor]
        self.nonces[p.debtor] += 1
        ins = Instruction(
            id=bytes.fromhex(p.key),
            nonce=nonce,
            debtor=p.debtor,
            creditor=p.creditor,
            sell_currency=p.sell_currency.encode(),
            sell_amount=p.sell_amount,
            buy_currency=p.buy_currency.encode(),
            min_buy_amount=p.buy_amount,
            deadline=2**40 - 1,
            details_hash=os.urandom(32),
        )
        return self.vault.sign_instruction(ins, debtor.key)

    def settle_cycle(self, payments: list[Payment], signed: dict[str, SignedInstruction]) -> int:
        """One settleCycle of ``payments``; returns its gas."""
        pairs: dict[tuple[str, str, str], int] = {}
        quotes: list[SignedQuote] = []
        entries = []
        for p in payments:
            lp_index = next(i for i, lp in enumerate(self.lps) if lp.address == p.liquidity_provider)
            pair = (p.sell_currency, p.buy_currency, p.liquidity_provider)
            if pair not in pairs:
                pairs[pair] = len(quotes)
                quotes.append(self.quote(p.sell_currency, p.buy_currency, lp_index))
            entries.append(CycleEntry(signed[p.key], pairs[pair]))
        # Sender.transact raises the vault's own error should the cycle revert.
        return int(self.vault.settle_cycle(self.relayer, entries, quotes)["gasUsed"])

    def escrow_refusal(self, signed: SignedInstruction) -> str | None:
        """The vault's answer to escrowing ``signed`` gross, simulated: None if it would pass."""
        call = self.vault.contract.functions.escrow(2**64, signed.instruction.as_tuple(), signed.signature.as_tuple())
        try:
            call.call({"from": self.relayer.address})
        except (ContractCustomError, ContractLogicError) as exc:
            data = exc.data if isinstance(exc.data, str | bytes) else str(exc.data)
            error = decode_revert(data)
            return type(error).__name__ if error is not None else str(exc)[:80]
        return None

    def balances(self, accounts: set[Account]) -> dict[Account, int]:
        return {(p, c): self.vault.balance(p, c).available for p, c in accounts}


# ---------------------------------------------------------------------------- gridlock ring


def gridlock_ring(bench: Bench, n: int, tag: str) -> dict[str, object]:
    codes = DEFAULT_CURRENCIES
    amounts: list[int] = []
    amount = 10_000 * 10 ** bench.decimals[codes[0]]
    for i in range(n):
        amounts.append(amount)
        sell, buy = codes[i % len(codes)], codes[(i + 1) % len(codes)]
        amount = convert(amount, bench.rate(sell, buy), 0, bench.decimals[sell], bench.decimals[buy]).buy_amount
    banks = [
        bench.bank(f"RING{tag}{i:02d}"[:8].ljust(8, "X"), (codes[i % len(codes)],), {codes[i % len(codes)]: a // 10})
        for i, a in enumerate(amounts)
    ]
    payments = []
    for i in range(n):
        sell, buy = codes[i % len(codes)], codes[(i + 1) % len(codes)]
        creditor = banks[(i + 1) % n]
        if buy not in creditor.currencies:  # the last leg closes the ring in the first bank's currency
            buy = creditor.currencies[0]
        payments.append(bench.price(new_uetr().hex(), banks[i], creditor, sell, amounts[i], buy, i))
    signed = {p.key: bench.sign(p, banks[i]) for i, p in enumerate(payments)}
    refusals = [bench.escrow_refusal(signed[p.key]) for p in payments]
    accounts = {a for p in payments for a, _ in p.legs()}
    cycle = resolve(payments, bench.balances(accounts))
    gas = bench.settle_cycle(list(cycle.settled), signed) if cycle.settled else 0
    return {
        "banks": n,
        "gross_settled": sum(r is None for r in refusals),
        "gross_refusals": sorted({r for r in refusals if r}),
        "net_settled": len(cycle.settled),
        "transactions": 1 if cycle.settled else 0,
        "gas": gas,
        "liquidity_held_over_owed": round(sum(a // 10 for a in amounts) / sum(amounts), 3),
    }


# ---------------------------------------------------------------------------- realistic day


def realistic_day(bench: Bench, count: int, funded: float, seed: int) -> dict[str, object]:
    rng = random.Random(seed)
    codes = DEFAULT_CURRENCIES
    homes = [
        ("USD", "EUR"),
        ("EUR", "GBP"),
        ("GBP", "USD", "CHF"),
        ("JPY", "USD"),
        ("SGD", "CNY", "USD"),
        ("CHF", "EUR"),
    ]
    usd_per_major = {c: 1.0 if c == "USD" else 1e18 / bench.rate("USD", c) for c in codes}
    plan: list[tuple[int, int, str, int, str, int]] = []
    for i in range(count):
        d, c = rng.sample(range(len(homes)), 2)
        sell = rng.choice(homes[d])
        buy = rng.choice([b for b in homes[c] if b != sell] or [homes[c][0]])
        if buy == sell:
            continue
        size_usd = min(rng.lognormvariate(math.log(50_000), 1.4), 20_000_000)
        amount = max(1, int(size_usd / usd_per_major[sell] * 10 ** bench.decimals[sell]))
        plan.append((d, c, sell, amount, buy, i % 2))
    outflow: dict[tuple[int, str], int] = defaultdict(int)
    for d, _, sell, amount, _, _ in plan:
        outflow[(d, sell)] += amount
    banks = [
        bench.bank(
            f"DAYB{i:02d}US"[:8],
            homes[i],
            {code: int(outflow[(i, code)] * funded) for code in homes[i]},
        )
        for i in range(len(homes))
    ]
    payments = [
        bench.price(new_uetr().hex(), banks[d], banks[c], sell, amount, buy, lp) for d, c, sell, amount, buy, lp in plan
    ]
    debtor_of = {p.key: banks[plan[i][0]] for i, p in enumerate(payments)}
    signing = time.perf_counter()
    signed = {p.key: bench.sign(p, debtor_of[p.key]) for p in payments}
    signing_s = time.perf_counter() - signing
    accounts = {a for p in payments for a, _ in p.legs()}
    start = bench.balances(accounts)

    net = _settle_net(bench, payments, signed, dict(start))
    gross = _settle_gross(payments, dict(start))
    on_chain = bench.balances(accounts)
    mismatches = sum(1 for a in accounts if on_chain[a] != net["ledger"][a])
    value = {c: usd_per_major[c] / 10 ** bench.decimals[c] for c in codes}

    def usd(per_currency: dict[str, int]) -> float:
        return float(sum(v * value[c] for c, v in per_currency.items()))

    ratio = {
        c: round(net["net_debits"].get(c, 0) / net["gross"][c], 3) for c in sorted(net["gross"]) if net["gross"][c]
    }
    return {
        "payments": len(payments),
        "banks": len(banks),
        "liquidity_providers": len(bench.lps),
        "currencies": len({c for p in payments for c in (p.sell_currency, p.buy_currency)}),
        "funded_fraction_of_gross_outflow": funded,
        "gross": {
            "settled": gross["settled"],
            "left_queued": len(payments) - gross["settled"],
            "value_settled_usd": round(usd(gross["value"])),
            "transactions": 2 * gross["settled"],
        },
        "net": {
            "settled": net["settled"],
            "left_queued": len(payments) - net["settled"],
            "value_settled_usd": round(usd(net["value"])),
            "transactions": net["cycles"],
            "gas_per_payment": round(net["gas"] / max(1, net["settled"])),
        },
        "liquidity_used_net_over_gross": ratio,
        "liquidity_used_overall": round(usd(net["net_debits"]) / usd(net["gross"]), 3),
        "liquidity_saving": round(1 - usd(net["net_debits"]) / usd(net["gross"]), 3),
        "chain_matches_ledger": mismatches == 0,
        "signing_s": round(signing_s, 1),
    }


def _settle_net(
    bench: Bench, payments: list[Payment], signed: dict[str, SignedInstruction], ledger: dict[Account, int]
) -> dict:  # type: ignore[type-arg]
    queue: list[Payment] = []
    arrivals = iter(payments)
    settled = cycles = gas = 0
    value: dict[str, int] = defaultdict(int)
    gross: dict[str, int] = defaultdict(int)
    net_debits: dict[str, int] = defaultdict(int)
    exhausted = False
    stalled = 0
    while not exhausted or (queue and stalled < 3):
        batch = [p for _, p in zip(range(CYCLE_SIZE_MAX // 2), arrivals, strict=False)]
        exhausted = exhausted or not batch
        queue.extend(batch)
        cycle = resolve(queue, ledger, size_max=CYCLE_SIZE_MAX)
        if not cycle.settled:
            stalled += 1 if exhausted else 0
            continue
        stalled = 0
        gas += bench.settle_cycle(list(cycle.settled), signed)
        cycles += 1
        done = {p.key for p in cycle.settled}
        queue = [p for p in queue if p.key not in done]
        settled += len(done)
        for account, movement in cycle.net.items():
            ledger[account] += movement
        for p in cycle.settled:
            value[p.sell_currency] += p.sell_amount
        for code, moved in cycle.gross().items():
            gross[code] += moved
        for code, debit in cycle.net_debits().items():
            net_debits[code] += debit
    return {
        "settled": settled,
        "cycles": cycles,
        "gas": gas,
        "value": value,
        "gross": gross,
        "net_debits": net_debits,
        "ledger": ledger,
    }


def _settle_gross(payments: list[Payment], ledger: dict[Account, int]) -> dict:  # type: ignore[type-arg]
    """Each payment alone, once its debtor and its liquidity provider hold it, in arrival order."""
    queue: list[Payment] = []
    arrivals = iter(payments)
    settled = 0
    value: dict[str, int] = defaultdict(int)
    while batch := [p for _, p in zip(range(CYCLE_SIZE_MAX // 2), arrivals, strict=False)]:
        queue.extend(batch)
        progress = True
        while progress:
            progress = False
            waiting = []
            for p in queue:
                (debtor, _), (lp, _) = p.debits()
                if ledger[(debtor, p.sell_currency)] >= p.sell_amount and ledger[(lp, p.buy_currency)] >= p.buy_amount:
                    for account, movement in p.legs():
                        ledger[account] += movement
                    value[p.sell_currency] += p.sell_amount
                    settled += 1
                    progress = True
                else:
                    waiting.append(p)
            queue = waiting
    return {"settled": settled, "value": value}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--payments", type=int, default=10_000, help="payments in the realistic day (default 10000)")
    parser.add_argument("--funded", type=float, default=0.2, help="banks' funds as a fraction of gross outflow")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    if args.payments < 1 or not 0 < args.funded <= 1:
        parser.error("--payments must be positive and --funded in (0, 1]")
    with tempfile.TemporaryDirectory() as tmp, Devnet(accounts=20) as devnet:
        network = build_network(connect(devnet.url), Path(tmp) / "manifest.json")
        bench = Bench(network)
        figures: dict[str, object] = {}
        for n, tag in ((3, "A"), (10, "B")):
            ring = gridlock_ring(bench, n, tag)
            figures[f"gridlock_ring_{n}"] = ring
            refusals = ring["gross_refusals"]
            assert isinstance(refusals, list)
            print(
                f"gridlock ring of {n}: gross settles {ring['gross_settled']} ({', '.join(refusals)}), "
                f"one cycle settles {ring['net_settled']} in {ring['transactions']} transaction ({ring['gas']:,} gas)"
            )
        day = realistic_day(bench, args.payments, args.funded, args.seed)
        figures["realistic_day"] = day
    gross, net = day["gross"], day["net"]
    assert isinstance(gross, dict) and isinstance(net, dict)
    print(
        f"realistic day: {day['payments']:,} payments, {day['banks']} banks, {day['liquidity_providers']} liquidity "
        f"providers, {day['currencies']} currencies, banks funded at {args.funded:.0%} of their gross outflow"
    )
    print(f"{'':<24}{'gross':>16}{'net':>16}")
    for key, label in (
        ("settled", "payments settled"),
        ("left_queued", "left queued"),
        ("value_settled_usd", "value settled (USD)"),
        ("transactions", "transactions"),
    ):
        print(f"{label:<24}{gross[key]:>16,}{net[key]:>16,}")
    print(f"liquidity used (net debits / gross outflows) per currency: {day['liquidity_used_net_over_gross']}")
    print(f"liquidity used overall {day['liquidity_used_overall']:.1%}, saving {day['liquidity_saving']:.1%}")
    print(f"chain balances = ledger: {day['chain_matches_ledger']}; net gas per payment {net['gas_per_payment']:,}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0 if day["chain_matches_ledger"] else 1


if __name__ == "__main__":
    sys.exit(main())
