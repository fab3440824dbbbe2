"""Measure how long the console's pages take to render with many transfers in the store.

Starts its own devnet (a block a second), deploys the demo network and serves a node (API and
pipeline, SQLite), sends ``--real`` transfers through the API and waits for them to be FINAL (so
that transfer pages have chain references, and the chain page and the liquidity page real events),
then writes ``--transfers`` more into the store as the pipeline would have left them (RECEIVED ->
QUEUED -> SETTLED -> FINAL, 9 in 10; the rest in the other states), spread over the last hour.
Signed in as the operator, it asks each page ``--requests`` times in turn, one request at a time,
and prints p50 and p95 per page.

Measured in the same run, as the reference on the same machine: the latency of a trivial FastAPI
endpoint (uvicorn, one process) asked the same way; figures are also given as its multiples.
``--json PATH`` writes the figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
from sqlalchemy import select  # noqa: E402

from node.bank.client import BankClient  # noqa: E402
from node.config import DEVNET_OPERATOR_API_KEY  # noqa: E402
from node.store.db import Store  # noqa: E402
from node.store.models import Bank, Transfer, TransferEvent  # noqa: E402
from scripts._serve import serve_demo_network, stop, wait_ready  # noqa: E402
from scripts.bench_node import ROUTES, TRIVIAL_APP  # noqa: E402
from scripts.devnet import Devnet, free_port  # noqa: E402
from settlement.lifecycle import TransferStatus as S  # noqa: E402

PATHS = {
    "overview": "/console",
    "overview (live part)": "/console/live",
    "transfers (search, newest 50)": "/console/transfers",
    "transfers (state and pair)": "/console/transfers?status=FINAL&pair=USD/EUR",
    "transfer page": "/console/transfers/{uetr}",
    "reviews": "/console/reviews",
    "liquidity": "/console/liquidity",
    "chain": "/console/chain",
    "audit": "/console/audit",
}
PATHS_TO = {S.FINAL: [S.RECEIVED, S.QUEUED, S.SETTLED, S.FINAL], S.REFUNDED: [S.RECEIVED, S.ESCROWED, S.REFUNDED]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--transfers", type=int, default=10_000, help="transfers written into the store")
    p.add_argument("--real", type=int, default=20, help="transfers sent through the API first")
    p.add_argument("--requests", type=int, default=100, help="requests per page")
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, Devnet(block_time_s=1) as devnet:
        data = Path(tmp)
        demo = serve_demo_network(data, devnet)
        try:
            real = _send(demo.url, demo.api_keys, demo.network, args.real)
            store = Store(f"sqlite:///{data / 'node.db'}")
            started = time.perf_counter()
            made = _fill(store, args.transfers)
            print(f"wrote {args.transfers} transfers into the store in {time.perf_counter() - started:.1f} s")
            figures = _measure(demo.url, args.requests, real + random.sample(made, 5))
            store.dispose()
        finally:
            stop(demo.procs)
    figures["trivial FastAPI (reference)"] = _trivial(args.requests)
    reference = figures["trivial FastAPI (reference)"]["p50_ms"]
    print(f"\n{'page':34} {'p50 ms':>8} {'p95 ms':>8} {'p95 / trivial p50':>18}")
    for name, f in figures.items():
        print(f"{name:34} {f['p50_ms']:8.1f} {f['p95_ms']:8.1f} {f['p95_ms'] / reference:18.1f}")
    if args.json:
        args.json.write_text(json.dumps({"transfers": args.transfers, "pages": figures}, indent=1))
    return 0


def _send(url: str, keys: dict[str, str], network: Any, count: int) -> list[str]:
    sent = []
    for i in range(count):
        debtor, creditor, sell, buy = ROUTES[i % len(ROUTES)]
        p = next(p for p in network.participants if p.bic == debtor)
        client = BankClient(url, keys[debtor], p.key, vault=network.manifest.vault)
        sent.append((client, client.send(creditor, sell, "100.00", buy)["id"]))
    for client, uetr in sent:  # a bank sees only its own transfers
        client.wait(uetr, timeout_s=120)
    print(f"{count} transfers sent through the API, FINAL")
    return [uetr for _, uetr in sent]


def _fill(store: Store, count: int) -> list[str]:
    """``count`` transfers as the pipeline leaves them, in chunks of one transaction each."""
    now = dt.datetime.now(dt.UTC)
    with store.transaction(write=False) as s:
        banks = [b for b in s.scalars(select(Bank)) if b.kind == "bank"]
    ids: list[str] = []
    for start in range(0, count, 1000):
        with store.transaction() as s:
            for i in range(start, min(count, start + 1000)):
                debtor, creditor = random.sample(banks, 2)
                sell, buy = debtor.currencies[0], creditor.currencies[0]
                final = S.FINAL if i % 10 else random.choice(list(S))
                created = now - dt.timedelta(seconds=random.uniform(5, 3500))
                uetr = str(uuid.uuid4())
                ids.append(uetr)
                steps = PATHS_TO.get(final, [S.RECEIVED, final] if final is not S.RECEIVED else [S.RECEIVED])
                s.add(_transfer(uetr, i, debtor, creditor, sell, buy, final, created))
                for n, step in enumerate(steps):
                    at = created + dt.timedelta(seconds=0.5 * n)
                    block = 10_000 + i if step in (S.SETTLED, S.FINAL) else None
                    tx = "0x" + uuid.uuid4().hex * 2 if block else None
                    s.add(
                        TransferEvent(
                            transfer_id=uetr,
                            status=step.value,
                            reason=step.value.lower(),
                            at=at,
                            tx_hash=tx,
                            block_number=block,
                        )
                    )
    return ids


def _transfer(
    uetr: str, i: int, debtor: Bank, creditor: Bank, sell: str, buy: str, status: S, at: dt.datetime
) -> Transfer:
    return Transfer(
        id=uetr,
        bank_id=debtor.id,
        nonce=1_000_000 + i,
        debtor=debtor.address,
        creditor=creditor.address,
        sell_currency=sell,
        sell_amount=random.randint(100, 10_000_000),
        buy_currency=buy,
        min_buy_amount=0,
        buy_amount=random.randint(100, 10_000_000) if status in (S.SETTLED, S.FINAL) else None,
        fee=10 if status in (S.SETTLED, S.FINAL) else None,
        deadline=int(at.timestamp()) + 3600,
        details_hash="0x" + "00" * 32,
        signature_r="0x" + "00" * 32,
        signature_vs="0x" + "00" * 32,
        status=status.value,
        status_reason=status.value.lower(),
        created_at=at,
        updated_at=at + dt.timedelta(seconds=2),
    )


def _timed(http: httpx.Client, paths: list[str], count: int) -> dict[str, float]:
    """``count`` requests, one at a time, going round ``paths``; p50 and p95 in milliseconds."""
    times = []
    for i in range(count):
        path = paths[i % len(paths)]
        started = time.perf_counter()
        answer = http.get(path)
        times.append(time.perf_counter() - started)
        assert answer.status_code == 200, (path, answer.status_code)
    times.sort()
    return {"p50_ms": 1000 * statistics.median(times), "p95_ms": 1000 * times[int(0.95 * (len(times) - 1))]}


def _measure(url: str, count: int, uetrs: list[str]) -> dict[str, dict[str, float]]:
    with httpx.Client(base_url=url, timeout=30, follow_redirects=False) as http:
        signed = http.post("/console/login", data={"key": DEVNET_OPERATOR_API_KEY})
        assert signed.status_code == 303, signed.text
        figures = {}
        for name, path in PATHS.items():
            for _ in range(3):
                http.get(path.format(uetr=uetrs[0]))  # templates compiled, connections open
            figures[name] = _timed(http, [path.format(uetr=u) for u in uetrs], count)
    return figures


def _trivial(count: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "trivial_app.py").write_text(TRIVIAL_APP)
        port = free_port()
        cmd = [sys.executable, "-m", "uvicorn", "trivial_app:app", "--port", str(port), "--log-level", "warning"]
        proc = subprocess.Popen(cmd, cwd=tmp)
        try:
            wait_ready(f"http://127.0.0.1:{port}/ping", [proc], Path(tmp) / "trivial_app.py")
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                for _ in range(3):
                    http.get("/ping")
                return _timed(http, ["/ping"], count)
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
