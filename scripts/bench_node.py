"""Measure the node end to end: transfers accepted per second, transfers reaching FINAL per
second, and the time from submit to FINAL (p50, p99), with concurrent banks.

Starts its own devnet (interval mining, one block a second), deploys, onboards and funds the
demo banks, and serves a node (``corridor node serve`` in a child process, pipeline included),
then sends ``--transfers`` signed instructions from the four demo banks on ``--concurrency``
client threads, through the Python client, and waits until every one is FINAL.

Measured in the same run, as references on the same machine and devnet:

  fastapi_trivial_rps   requests per second of a trivial FastAPI endpoint (uvicorn, one
                        process), driven by the same client threads
  web3_erc20_sends_per_s  plain ERC-20 transfers sent with web3.py (signed locally, nonces
                        counted locally) per second, from first send to last receipt

Submit-to-FINAL is the FINAL transition's time as the node recorded it minus the moment the
client started the POST (one machine, one clock). ``--mode both`` (the default) measures a node
settling in net cycles and one settling gross, each on a devnet of its own, in the same run.
``--iso`` then sends as many transfers again to the same node as ISO 20022 pacs.008 documents
(each one request for the typed data to sign and one to submit, as ``corridor bank iso send``
does), figures prefixed ``iso_``: compare them with the JSON figures of ``--batch 1``.
Prints a table; ``--json PATH`` also writes the figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests  # noqa: E402
from eth_account import Account  # noqa: E402
from hexbytes import HexBytes  # noqa: E402

from node.bank.client import BankClient  # noqa: E402
from node.bank.iso20022 import CreditTransfer, Party, pacs008  # noqa: E402
from node.config import DEVNET_AUDITOR_API_KEY  # noqa: E402
from scripts._serve import serve_demo_network, stop, wait_ready  # noqa: E402
from scripts.devnet import Devnet, free_port  # noqa: E402
from scripts.network import Network  # noqa: E402
from settlement.chain import contract  # noqa: E402
from settlement.chain.keys import devnet_key  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ROUTES = (
    ("FATLUS33", "RHNLDEFF", "USD", "EUR"),
    ("RHNLDEFF", "THMSGB2L", "EUR", "GBP"),
    ("THMSGB2L", "LNCTSGSG", "GBP", "SGD"),
    ("LNCTSGSG", "FATLUS33", "SGD", "USD"),
)
TRIVIAL_APP = """
from fastapi import FastAPI
app = FastAPI()

@app.get("/ping")
def ping() -> dict[str, str]:
    return {"status": "ok"}
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfers", type=int, default=3000, help="transfers to send (default 3000)")
    parser.add_argument("--concurrency", type=int, default=16, help="client threads (default 16)")
    parser.add_argument(
        "--batch", type=int, default=1, help="transfers per request: 1 posts each alone, more use /v1/transfers/batch"
    )
    parser.add_argument(
        "--mode",
        choices=("net", "gross", "both"),
        default="both",
        help="how the node settles: net cycles, gross (escrow, then settle), or both in turn (default)",
    )
    parser.add_argument(
        "--iso",
        action="store_true",
        help="after the JSON transfers, send as many as pacs.008 documents to the same node (iso_ figures)",
    )
    parser.add_argument("--erc20-sends", type=int, default=500, help="plain ERC-20 sends for the reference")
    parser.add_argument("--timeout-s", type=float, default=600.0, help="give up waiting for FINAL after this")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="copy the node's store, log and manifest here at the end (and, if transfers did not all reach FINAL, "
        "what the chain says of their transactions, as chain.json)",
    )
    parser.add_argument(
        "--split",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the API and the pipeline as two processes (default), or as one",
    )
    args = parser.parse_args()

    figures: dict[str, Any] = {}
    modes = ("net", "gross") if args.mode == "both" else (args.mode,)
    for i, mode in enumerate(modes):
        measured = _run(args, mode, references=i == len(modes) - 1)
        figures |= {(k if k.startswith(("fastapi", "web3", "iso")) else f"{mode}_{k}"): v for k, v in measured.items()}
    if len(modes) == 2:
        figures["net_over_gross_final_per_s"] = round(figures["net_final_per_s"] / figures["gross_final_per_s"], 2)
    figures |= {
        "transfers": args.transfers,
        "batch": args.batch,
        "concurrency": args.concurrency,
        "node_processes": 2 if args.split else 1,
        "cpus": os.cpu_count(),
    }
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


def _run(args: argparse.Namespace, mode: str, references: bool) -> dict[str, Any]:
    """One node settling ``mode`` on a devnet of its own, driven; with ``references``, the trivial
    FastAPI and raw web3 figures on the same devnet afterwards."""
    print(f"{mode}: a devnet and a node of its own", flush=True)
    with tempfile.TemporaryDirectory() as tmp, Devnet(block_time_s=1) as devnet:
        data = Path(tmp)
        demo = serve_demo_network(data, devnet, split=args.split, env={"CORRIDOR_NODE_SETTLEMENT": mode})
        network = demo.network
        finished = False
        nonces = {bic: itertools.count() for bic, *_ in ROUTES}
        try:
            figures = _drive(network, demo.url, demo.api_keys, args, nonces)
            if args.iso:
                iso = _drive(network, demo.url, demo.api_keys, args, nonces, iso=True)
                figures |= {f"iso_{mode}_{k}": v for k, v in iso.items()}
            finished = True
            if references:
                figures |= {"fastapi_trivial_rps": round(_trivial_rps(args.concurrency), 1)}
                figures |= {"web3_erc20_sends_per_s": round(_erc20_rate(network, args.erc20_sends), 1)}
        finally:
            stop(demo.procs)
            if args.keep:
                _keep(data, args.keep / mode, network, open_txs=not finished)
    return figures


def _drive(
    network: Network,
    url: str,
    keys: dict[str, str],
    args: argparse.Namespace,
    nonces: dict[str, itertools.count[int]],
    iso: bool = False,
) -> dict[str, Any]:
    """Send ``args.transfers`` transfers (as JSON, or with ``iso`` as pacs.008 documents) and wait
    for all of them to be FINAL. ``nonces``: one counter per bank, shared by the threads and runs,
    so that no two transfers sign with the same nonce."""
    participants = {p.bic: p for p in network.participants}
    local = threading.local()
    started: dict[str, float] = {}
    nonce_lock = threading.Lock()
    batch = 1 if iso else args.batch

    def send(job: int) -> None:
        """One request: ``batch`` transfers of one bank (POST /v1/transfers, or /batch), or one pacs.008."""
        debtor, creditor, sell, buy = ROUTES[job % len(ROUTES)]
        clients = local.__dict__.setdefault("clients", {})
        if debtor not in clients:
            clients[debtor] = BankClient(url, keys[debtor], participants[debtor].key)
        client = clients[debtor]
        with nonce_lock:
            batch_nonces = [next(nonces[debtor]) for _ in range(batch)]
        if iso:
            n = batch_nonces[0]
            document = pacs008(
                CreditTransfer(
                    debtor,
                    creditor,
                    f"{(1_000 + n % 97) / 100:.2f}",
                    sell,
                    buy,
                    "0.0001",
                    n,
                    Party("Ordering Customer", participants[debtor].country),
                    Party("Beneficiary", participants[creditor].country),
                )
            )
            t0 = time.time()
            started[client.iso_send(document)["id"]] = t0
            return
        bodies = [client.build(creditor, sell, 1_000 + n % 97, buy, nonce=n)[1] for n in batch_nonces]
        t0 = time.time()
        if batch == 1:
            client.submit(bodies[0])
        else:
            result = client.submit_many(bodies)
            assert result["refused"] == 0, result
        for body in bodies:
            started[body["instruction"]["id"]] = t0

    begin = time.time()
    with ThreadPoolExecutor(args.concurrency) as pool:
        list(pool.map(send, range(args.transfers // batch)))
    accepted_s = time.time() - begin
    sent = len(started)
    print(f"accepted {sent} transfers in {accepted_s:.1f} s; waiting for FINAL ...", flush=True)
    final_at = _wait_final(url, set(started), args.timeout_s)
    latencies = sorted(final_at[tid] - started[tid] for tid in started)
    last_final = max(final_at.values())
    return {
        "accepted_per_s": round(sent / accepted_s, 1),
        "final_per_s": round(sent / (last_final - begin), 1),
        "submit_to_final_p50_s": round(statistics.median(latencies), 2),
        "submit_to_final_p99_s": round(latencies[int(0.99 * (len(latencies) - 1))], 2),
        "first_submit_to_last_final_s": round(last_final - begin, 1),
    }


def _wait_final(url: str, ids: set[str], timeout_s: float) -> dict[str, float]:
    """FINAL times from the auditor's export (the node's own record of each transition), read once
    nothing is left in flight: polling the whole export meanwhile took CPU from the node it measures."""
    deadline = time.monotonic() + timeout_s
    headers = {"Authorization": f"Bearer {DEVNET_AUDITOR_API_KEY}"}
    with requests.Session() as http:
        http.headers.update(headers)
        while True:
            listed = {
                s: http.get(f"{url}/v1/transfers", params={"status": s, "limit": 1}, timeout=60).json()["data"]
                for s in ("RECEIVED", "QUEUED", "ESCROWED", "SETTLED")
            }
            in_flight = [status for status, page in listed.items() if page]
            print(f"  in flight: {', '.join(in_flight) or 'none'}", flush=True)
            if not in_flight:
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"transfers still {', '.join(in_flight)} after {timeout_s} s")
            time.sleep(1)
        text = http.get(f"{url}/v1/audit/transfers/export", timeout=120).text
    rows = [json.loads(line) for line in text.splitlines()]
    ended = [r for r in rows if r["id"] in ids and r["status"] != "FINAL"]
    if ended:
        raise SystemExit(f"{len(ended)} transfers ended otherwise, e.g. {ended[0]['status']}: {ended[0]}")
    final = {r["id"]: dt.datetime.fromisoformat(r["updated_at"]).timestamp() for r in rows if r["id"] in ids}
    if len(final) != len(ids):
        raise SystemExit(f"the export holds {len(final)} of the {len(ids)} transfers sent")
    return final


def _keep(data: Path, keep: Path, network: Network, open_txs: bool) -> None:
    """Copy the run's store, log and manifest to ``keep``; with ``open_txs``, what the chain says of
    every transaction of the transfers that are not FINAL, to tell a lost event from a lost send."""
    keep.mkdir(parents=True, exist_ok=True)
    for name in ("node.db", "node.db-wal", "node.db-shm", "node.log", "manifest.json"):
        if (data / name).exists():
            shutil.copy2(data / name, keep / name)
    if not open_txs:
        return
    with sqlite3.connect(f"file:{data / 'node.db'}?mode=ro", uri=True) as db:
        hashes = db.execute(
            "SELECT DISTINCT c.id, c.kind, c.status, h.value FROM chain_txs c, json_each(c.hashes) h "
            "JOIN transfers t ON t.resolve_tx_id = c.id OR t.batch_id IN "
            "(SELECT b.id FROM escrow_batches b WHERE b.escrow_tx_id = c.id) "
            "WHERE t.status IN ('RECEIVED', 'QUEUED', 'ESCROWED', 'SETTLED')"
        ).fetchall()
    chain = []
    for tx_id, kind, status, tx_hash in hashes:
        receipt = network.w3.provider.make_request("eth_getTransactionReceipt", [tx_hash])  # type: ignore[arg-type]
        held = network.w3.provider.make_request("eth_getTransactionByHash", [tx_hash])  # type: ignore[arg-type]
        chain.append(
            {
                "tx_id": tx_id,
                "kind": kind,
                "store_status": status,
                "hash": tx_hash,
                "receipt": receipt.get("result"),
                "transaction": held.get("result"),
            }
        )
    (keep / "chain.json").write_text(json.dumps({"head": network.w3.eth.block_number, "txs": chain}, indent=1))
    print(f"kept the store, log and chain.json ({len(chain)} open transactions) in {keep}", flush=True)


def _trivial_rps(concurrency: int, duration_s: float = 5.0) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "trivial_app.py").write_text(TRIVIAL_APP)
        port = free_port()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "trivial_app:app",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            cwd=tmp,
        )
        try:
            wait_ready(f"http://127.0.0.1:{port}/ping", [proc], Path(tmp) / "trivial_app.py")
            local = threading.local()
            until = time.monotonic() + duration_s

            def hammer(_: int) -> int:
                session = getattr(local, "session", None) or requests.Session()
                local.session = session
                n = 0
                while time.monotonic() < until:
                    session.get(f"http://127.0.0.1:{port}/ping", timeout=5).raise_for_status()
                    n += 1
                return n

            begin = time.monotonic()
            with ThreadPoolExecutor(concurrency) as pool:
                total = sum(pool.map(hammer, range(concurrency)))
            return total / (time.monotonic() - begin)
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def _erc20_rate(network: Network, sends: int) -> float:
    """Plain ERC-20 transfers from one account with web3.py: sent, then all mined."""
    w3 = network.w3
    sender = Account.from_key(devnet_key(18))
    receiver = Account.from_key(devnet_key(19)).address
    usd = contract(w3, "SettlementAsset", network.manifest.asset("USD").address)
    issuer = network.sender("issuer")
    issuer.transact(usd.functions.mint(sender.address, 10**12))
    issuer.transact(usd.functions.mint(receiver, 1))  # a holder already: T's definition
    nonce = w3.eth.get_transaction_count(sender.address)
    fees = {"maxFeePerGas": 2 * int(w3.eth.get_block("latest")["baseFeePerGas"]) + 10**9, "maxPriorityFeePerGas": 10**9}
    begin = time.time()
    last = HexBytes(b"")
    for i in range(sends):
        params: Any = {
            "from": sender.address,
            "nonce": nonce + i,
            "gas": 60_000,
            "chainId": network.manifest.chain_id,
            **fees,
        }
        tx = usd.functions.transfer(receiver, 1).build_transaction(params)
        last = w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction)
    w3.eth.wait_for_transaction_receipt(last, timeout=300, poll_latency=0.1)
    return sends / (time.time() - begin)


if __name__ == "__main__":
    sys.exit(main())
