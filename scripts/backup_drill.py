"""Backup drill: a backup taken under load, the store destroyed, restored, and brought forward.

Starts a devnet, the demo banks and a node (API and worker in two processes), sends
``--transfers`` signed transfers in batches as fast as the node takes them, and when
``--backup-at`` of them are accepted runs ``corridor node backup`` while the load goes on. Once the
load is over it kills the node (SIGKILL), deletes the store, and times ``corridor node restore``,
which puts the backup back and recovers from the chain every transfer that moved after it. The
node is started again; the banks look up every UETR they were answered for and resubmit, under the
same Idempotency-Key, those the node no longer knows (accepted after the backup and lost before
they reached the chain). It waits until every transfer is terminal and checks each is FINAL once,
the reconciliation clean and the audit passing, then prints what was recovered and how long it took.
Target: the restore and the recovery under 5 minutes for 100,000 transfers.
"""

from __future__ import annotations

import argparse
import itertools
import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from node.bank.client import BankClient  # noqa: E402
from scripts._cluster import ROOT, ROUTES, Cluster, settle_and_check, store_url  # noqa: E402
from scripts.devnet import Devnet  # noqa: E402

BATCH = 50


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--transfers", type=int, default=100_000, help="transfers sent (default 100000)")
    p.add_argument("--backup-at", type=float, default=0.5, help="share of the load accepted when the backup starts")
    p.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    p.add_argument("--concurrency", type=int, default=8, help="client threads")
    p.add_argument("--settle-s", type=float, default=0.5, help="from the end of the load to the disaster")
    p.add_argument("--timeout-s", type=float, default=1800.0, help="for every transfer to end")
    p.add_argument("--keep", type=Path, help="keep the data directory here")
    p.add_argument("--json", type=Path, help="also write the figures to this file")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="corridor-drill-") as tmp:
        data = Path(args.keep or tmp)
        data.mkdir(parents=True, exist_ok=True)
        with Devnet(block_time_s=1) as devnet, store_url(args.store, data) as url:
            figures = _drill(Cluster(devnet, data, url, {"CORRIDOR_NODE_RECONCILE_INTERVAL_S": "0"}), args)
    for name, value in figures.items():
        print(f"{name:32} {value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0 if figures["passed"] else 1


def _drill(cluster: Cluster, args: argparse.Namespace) -> dict[str, Any]:
    cluster.deploy()
    api, worker = cluster.add("api"), cluster.add("worker")
    bodies: dict[str, dict[str, Any]] = {}
    taken: dict[str, Any] = {}
    backup_thread = threading.Thread(target=lambda: taken.update(_backup(cluster)))
    started = time.monotonic()
    try:
        _load(cluster, api.port, args, bodies, backup_thread)
        backup_thread.join()
        load_s = time.monotonic() - started
        time.sleep(args.settle_s)  # some of what was accepted after the backup reaches the chain, some not
        for proc in (api, worker):
            cluster.signal(proc, signal.SIGKILL)
        cluster.store.dispose()
        _destroy(cluster)
        restored_at = time.monotonic()
        report = _run(cluster, ["restore", str(taken["manifest"])])
        restore_s = time.monotonic() - restored_at
        cluster.start(api)
        cluster.start(worker)
        resubmitted = _resubmit(cluster, api.port, bodies)
        outcome = settle_and_check(cluster, set(bodies), args.timeout_s)
    finally:
        cluster.stop_all()
    rebuilt = sum(1 for line in report.splitlines() if line.startswith("  rebuilt "))
    return {
        "transfers_accepted": len(bodies),
        "load_s": round(load_s, 1),
        "backup_s": taken.get("seconds"),
        "transfers_in_backup": taken.get("transfers"),
        "restore_and_recovery_s": round(restore_s, 1),
        "rebuilt_from_chain": rebuilt,
        "lost_and_resubmitted": resubmitted,
        "final": outcome.final,
        "lost": outcome.lost,
        "duplicated": outcome.duplicated,
        "problems": outcome.problems,
        "passed": not outcome.problems and outcome.lost == 0 and outcome.duplicated == 0,
    }


def _load(
    cluster: Cluster, port: int, args: argparse.Namespace, bodies: dict[str, dict[str, Any]], backup: threading.Thread
) -> None:
    participants = {p.bic: p for p in cluster.network.participants}
    local = threading.local()
    nonces = {bic: itertools.count() for bic, *_ in ROUTES}
    lock = threading.Lock()
    trigger = int(args.transfers * args.backup_at)

    def send(job: int) -> None:
        debtor, creditor, sell, buy = ROUTES[job % len(ROUTES)]
        clients = local.__dict__.setdefault("clients", {})
        if debtor not in clients:
            clients[debtor] = BankClient(f"http://127.0.0.1:{port}", cluster.keys[debtor], participants[debtor].key)
        with lock:
            numbers = [next(nonces[debtor]) for _ in range(BATCH)]
        batch = [clients[debtor].build(creditor, sell, 1_000 + n % 97, buy, nonce=n)[1] for n in numbers]
        result = clients[debtor].submit_many(batch)
        assert result["refused"] == 0, result
        with lock:
            bodies.update((b["instruction"]["id"], b) for b in batch)
            if len(bodies) >= trigger and not backup.is_alive() and not backup.ident:
                backup.start()

    with ThreadPoolExecutor(args.concurrency) as pool:
        list(pool.map(send, range(args.transfers // BATCH)))


def _run(cluster: Cluster, command: list[str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "scripts.corridor", "node", *command],
        cwd=ROOT,
        env=cluster.env(),
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"corridor node {command[0]} failed: {done.stderr.strip()}")
    return done.stdout


def _backup(cluster: Cluster) -> dict[str, Any]:
    started = time.monotonic()
    out = _run(cluster, ["backup"])
    seconds = round(time.monotonic() - started, 1)
    path = Path(out.split(":", 1)[0])
    manifest = path.with_suffix(".json")
    print(f"backup under load in {seconds} s: {out.strip()}", flush=True)
    return {"manifest": manifest, "seconds": seconds, "transfers": json.loads(manifest.read_text())["transfers"]}


def _destroy(cluster: Cluster) -> None:
    """The disaster: the store is gone."""
    if cluster.store_url.startswith("sqlite"):
        for path in cluster.data.glob("node.db*"):
            path.unlink()
        return
    from sqlalchemy import create_engine, text

    engine = create_engine(cluster.store_url)
    with engine.begin() as c:
        c.execute(text("DROP SCHEMA public CASCADE"))
        c.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def _resubmit(cluster: Cluster, port: int, bodies: dict[str, dict[str, Any]]) -> int:
    """As each bank would: list what the node knows of its transfers, and resubmit, under the same
    Idempotency-Key, every one it was answered for that the node lost."""
    participants = {p.bic: p for p in cluster.network.participants}
    lost = 0
    for bic, *_ in ROUTES:
        p = participants[bic]
        client = BankClient(f"http://127.0.0.1:{port}", cluster.keys[bic], p.key)
        known: set[str] = set()
        cursor: str | None = None
        while True:
            page = client.request("GET", "/v1/transfers?limit=200" + (f"&cursor={cursor}" if cursor else ""))
            known |= {t["id"] for t in page["data"]}
            cursor = page["next_cursor"]
            if not cursor:
                break
        mine = [b for b in bodies.values() if b["instruction"]["debtor"].lower() == p.address.lower()]
        missing = [b for b in mine if b["instruction"]["id"] not in known]
        for start in range(0, len(missing), BATCH):
            result = client.submit_many(missing[start : start + BATCH])
            assert result["refused"] == 0, result
        lost += len(missing)
    return lost


if __name__ == "__main__":
    sys.exit(main())
