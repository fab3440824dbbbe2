"""Send a handful of cross-border transfers as the demo banks and follow each to FINAL; then a
gridlock that only a net settlement cycle resolves; then one transfer that the sanctions
screening stops and one held for the operator's review; last, one payment sent as an ISO 20022
pacs.008, with its pacs.002 trail and its line in the day's camt.053 statement.

The gridlock: three banks each owe the next about 1.5 million USD worth, in a ring of
currencies, and keep only a tenth of it in the vault (they withdraw the rest first, and deposit
it back at the end). Gross, none could pay; the node queues all three and settles them in one
cycle, each bank's net debit covered. The demo prints what gross settlement would have needed,
what the cycle used, and the liquidity saved.

Needs the network of ``./run up`` (its node, its demo risk rules and ``.data/demo-banks.json``).
Each transfer is signed by its debtor bank's key, submitted through the node's API with the
Python client, and shown with its settlement's transaction hash and block once it is FINAL.
The held one is approved with the operator's API key (``CORRIDOR_NODE_OPERATOR_API_KEY``,
the devnet's by default) and followed to FINAL.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import fromstring

from node.bank.client import BankClient
from node.bank.iso20022 import CreditTransfer, Party, pacs008
from node.config import DEVNET_OPERATOR_API_KEY
from node.iso20022 import pacs002
from settlement.chain import Sender, connect, contract
from settlement.chain.vault import Vault
from settlement.conversion import convert
from settlement.errors import CorridorError
from settlement.lifecycle import TransferStatus
from settlement.manifest import Manifest
from settlement.money import format_minor

# (debtor BIC, creditor BIC, sell amount, sell currency, buy currency)
TRANSFERS = (
    ("FATLUS33", "RHNLDEFF", "250000.00", "USD", "EUR"),
    ("RHNLDEFF", "THMSGB2L", "80000.00", "EUR", "GBP"),
    ("THMSGB2L", "LNCTSGSG", "120000.00", "GBP", "SGD"),
    ("LNCTSGSG", "FATLUS33", "500000.00", "SGD", "JPY"),
    ("FATLUS33", "LNCTSGSG", "75000.00", "USD", "SGD"),
    ("RHNLDEFF", "FATLUS33", "1000000.00", "EUR", "USD"),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--credentials", type=Path, default=Path(".data/demo-banks.json"))
    parser.add_argument("--timeout-s", type=float, default=120.0)
    parser.add_argument("--rpc-url", default="http://127.0.0.1:8545", help="the devnet of ./run up")
    parser.add_argument("--manifest", type=Path, default=Path(".data/manifest.json"))
    args = parser.parse_args()
    if not args.credentials.exists():
        print(f"no {args.credentials}: start the network with ./run up first", file=sys.stderr)
        return 2
    banks = {b["bic"]: b for b in json.loads(args.credentials.read_text())["banks"]}
    clients = {bic: BankClient(b["url"], b["api_key"], b["private_key"]) for bic, b in banks.items()}

    def run(spec: tuple[str, str, str, str, str]) -> dict[str, Any]:
        debtor, creditor, amount, sell, buy = spec
        client = clients[debtor]
        t = client.send(creditor, sell, amount, buy)
        print(f"  sent     {t['id']}  {debtor} -> {creditor}  {amount} {sell} -> {buy}", flush=True)
        return client.wait(t["id"], timeout_s=args.timeout_s)

    started = time.monotonic()
    print(f"sending {len(TRANSFERS)} transfers through {next(iter(banks.values()))['url']}")
    try:
        with ThreadPoolExecutor(len(TRANSFERS)) as pool:
            finals = list(pool.map(run, TRANSFERS))
    except (CorridorError, TimeoutError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"\nall FINAL in {time.monotonic() - started:.1f} s:")
    print(f"  {'UETR':<36}  {'debtor':<8} {'creditor':<8} {'sold':>18} {'bought':>18}  settlement tx (block)")
    for (debtor, creditor, amount, sell, buy), t in zip(TRANSFERS, finals, strict=True):
        settled = next(h for h in t["history"] if h["status"] == "SETTLED")["chain"]
        bought = f"{format_minor(t['buy_amount'], buy)} {buy}"
        print(
            f"  {t['id']}  {debtor:<8} {creditor:<8} {amount + ' ' + sell:>18} {bought:>18}  "
            f"{settled['tx_hash']} ({settled['block_number']})"
        )
    try:
        gridlock(clients, banks, args)
        risk_controls(clients, banks, args.timeout_s)
        iso20022(clients, args.timeout_s)
    except (CorridorError, TimeoutError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


GRIDLOCK = (
    ("FATLUS33", "USD", "RHNLDEFF", "EUR"),
    ("RHNLDEFF", "EUR", "THMSGB2L", "GBP"),
    ("THMSGB2L", "GBP", "FATLUS33", "USD"),
)


def gridlock(clients: dict[str, BankClient], banks: dict[str, Any], args: argparse.Namespace) -> None:
    """Three banks that each hold a tenth of what they owe: one net cycle settles all three."""
    w3 = connect(args.rpc_url)
    manifest = Manifest.load(args.manifest, w3.eth.chain_id)
    vault = Vault(w3, manifest)
    amounts = [1_500_000_00]
    for _, sell, _, buy in GRIDLOCK[:-1]:  # each pays on what it is paid, at the reference rate
        rate = vault.reference_rate(sell, buy)[0]
        decimals = manifest.asset(sell).decimals, manifest.asset(buy).decimals
        amounts.append(convert(amounts[-1], rate, 0, *decimals).buy_amount)
    print("\ngridlock: three banks each owe the next, and keep a tenth of it in the vault:")
    withdrawn: list[tuple[str, str, int]] = []
    try:
        for (debtor, sell, _, _), amount in zip(GRIDLOCK, amounts, strict=True):
            bank = Sender.from_key(w3, banks[debtor]["private_key"])
            out = vault.balance(bank.address, sell).available - amount // 10
            bank.transact(vault.contract.functions.withdraw(sell.encode(), out, bank.address))
            withdrawn.append((debtor, sell, out))
            held, owed = format_minor(amount // 10, sell), format_minor(amount, sell)
            print(f"  {debtor} holds {held:>14} {sell}, owes {owed} {sell}")
        sent = []
        for (debtor, sell, creditor, buy), amount in zip(GRIDLOCK, amounts, strict=True):
            sent.append(clients[debtor].send(creditor, sell, amount, buy))
            if len(sent) == 1:
                t = _until(clients[debtor], sent[0]["id"], lambda t: t["status_code"] == "insufficient_cover", 60)
                print(f"  {debtor} -> {creditor} alone: {t['status']} ({t['status_code']}): {t['status_reason']}")
        finals = [
            clients[debtor].wait(t["id"], timeout_s=args.timeout_s)
            for (debtor, _, _, _), t in zip(GRIDLOCK, sent, strict=True)
        ]
        txs = {next(h for h in t["history"] if h["status"] == "SETTLED")["chain"]["tx_hash"] for t in finals}
        print(f"  all three FINAL, settled in {len(txs)} transaction: {', '.join(sorted(txs))}")
        print(f"  {'bank':<9} {'paid gross':>18} {'net debit':>16} {'saved':>7}")
        for (debtor, sell, _, _), amount in zip(GRIDLOCK, amounts, strict=True):
            incoming = next(f for f in finals if f["creditor"] == banks[debtor]["address"])
            net = amount - int(incoming["buy_amount"])
            paid, kept = f"{format_minor(amount, sell)} {sell}", f"{format_minor(net, sell)} {sell}"
            print(f"  {debtor:<9} {paid:>18} {kept:>16} {1 - net / amount:>7.1%}")
    finally:
        for debtor, sell, out in withdrawn:  # the banks put their liquidity back
            bank = Sender.from_key(w3, banks[debtor]["private_key"])
            token = contract(w3, "SettlementAsset", manifest.asset(sell).address)
            bank.transact(token.functions.approve(manifest.vault, out))
            bank.transact(vault.contract.functions.deposit(bank.address, sell.encode(), out))


def iso20022(clients: dict[str, BankClient], timeout_s: float) -> None:
    """One payment sent as a pacs.008: its pacs.002 trail and its line in the day's camt.053."""
    us = clients["FATLUS33"]
    t = CreditTransfer(
        debtor_agent="FATLUS33",
        creditor_agent="RHNLDEFF",
        amount="1000.00",
        currency="USD",
        creditor_currency="EUR",
        rate="0.5",
        nonce=int(us.request("GET", "/v1/me")["next_nonce"]),
        debtor=Party("Atlantic Shipping Inc", "US", account="000123456789"),
        creditor=Party("Rhein Logistik GmbH", "DE", iban="DE89370400440532013000"),
        remittance="invoice 2026-118",
    )
    print("\nISO 20022: FATLUS33 sends a pacs.008 (1,000.00 USD to a EUR account at RHNLDEFF, worst rate 0.5):")
    us.iso_send(pacs008(t))
    final = us.wait(t.uetr, timeout_s=timeout_s)
    print("  pacs.002 trail (each state's report, GET /v1/iso20022/pacs.002 or the iso20022 webhook):")
    for h in final["history"]:
        chain = h.get("chain") or {}
        where = f"  tx {chain['tx_hash'][:18]}... block {chain['block_number']}" if chain else ""
        print(f"    {h['at'][11:19]}  {pacs002.STATUS[TransferStatus(h['status'])]}  {h['status']:<9}{where}")
    ns = {"c": "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"}
    statement = fromstring(us.iso_statement("USD"))
    for entry in statement.iterfind(".//c:Ntry", ns):
        if entry.findtext(".//c:UETR", namespaces=ns) == t.uetr:
            amount = entry.find("c:Amt", ns)
            assert amount is not None
            print(
                f"  camt.053 line (FATLUS33, USD, today): {entry.findtext('c:CdtDbtInd', namespaces=ns)} "
                f"{amount.text} {amount.get('Ccy')}  UETR {t.uetr}  {entry.findtext('c:AddtlNtryInf', namespaces=ns)}"
            )
    for balance in statement.iterfind(".//c:Bal", ns):
        if balance.findtext("c:Tp/c:CdOrPrtry/c:Cd", namespaces=ns) == "CLBD":
            print(f"  closing booked balance: {balance.findtext('c:Amt', namespaces=ns)} USD (the vault's, from chain)")


def risk_controls(clients: dict[str, BankClient], banks: dict[str, Any], timeout_s: float) -> None:
    """One transfer the screening stops, one held for review (approved here by the operator)."""
    print("\nrisk controls, as the banks see them:")
    screened = clients["FATLUS33"].send(
        "RHNLDEFF",
        "USD",
        "50000.00",
        "EUR",
        details={
            "beneficiary": {"name": "PETROV, Iván S.", "account": "DE44500105175407324931", "country": "DE"},
            "remittance": "invoice 2026-118",
        },
    )
    t = clients["FATLUS33"].wait(screened["id"], status="REJECTED", timeout_s=timeout_s)
    print(
        f"  FATLUS33 -> RHNLDEFF 50000.00 USD to 'PETROV, Iván S.'\n    {t['status']} ({t['status_code']}): "
        f"{t['status_reason']}"
    )
    bank = clients["THMSGB2L"]
    held = bank.send("FATLUS33", "GBP", "2500000.00", "USD")
    t = _until(bank, held["id"], lambda t: t["status"] == "ESCROWED", timeout_s)
    print(
        f"  THMSGB2L -> FATLUS33 2500000.00 GBP -> USD\n    {t['status']} ({t['status_code']}): "
        f"{t['status_reason']}\n    review: {t['review']['state']}"
    )
    url = next(iter(banks.values()))["url"]
    operator = BankClient(url, os.environ.get("CORRIDOR_NODE_OPERATOR_API_KEY", DEVNET_OPERATOR_API_KEY))
    operator.request(
        "POST",
        f"/v1/admin/reviews/{held['id']}/approve",
        {"note": "large GBP payment confirmed with THMSGB2L's treasury desk"},
        idempotency_key=f"approve-{held['id']}",
    )
    t = bank.wait(held["id"], timeout_s=timeout_s)
    settled = next(h for h in t["history"] if h["status"] == "SETTLED")["chain"]
    print(
        f"    approved by the operator -> {t['status']}: bought {format_minor(t['buy_amount'], 'USD')} USD, "
        f"settlement tx {settled['tx_hash']} ({settled['block_number']})"
    )


def _until(client: BankClient, uetr: str, done: Callable[[dict[str, Any]], bool], timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        t = client.transfer(uetr)
        if done(t):
            return t
        if time.monotonic() > deadline:
            raise TimeoutError(f"transfer {uetr} is {t['status']} after {timeout_s} s")
        time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
