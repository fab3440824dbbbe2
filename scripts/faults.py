"""Fault campaigns: break the node under load and show, in figures, that nothing is lost or duplicated.

  failover  API replicas and workers on one store (PostgreSQL by default); the leading worker is
            SIGKILLed (then restarted), or SIGSTOPped past its lease and resumed with SIGCONT, in
            turn, so that the lease also comes back to a worker that led before. Per fault: the
            time until another worker leads, the stretch without a new FINAL around it, and what
            the deposed leader tried after it woke (its fenced writes and sends).
  kill9     one API and one worker; at random moments the API, the worker or both are SIGKILLed
            and started again at once. Per kill: the restart time and the time to the next FINAL.
  reorgs    ``anvil_reorg`` of a random depth up to ``--depth-max`` every few seconds, with k one
            deeper; after each, every FINAL transfer's settlement must be where the node said.
  keys      ``--transfers`` requests with wrong API keys from one address while a bank works: the
            flood meets 429 (rate_limited, Retry-After), the bank's latency is compared with alone.
  rpc       the node reaches the chain through a proxy (``tests/faults/rpc_proxy.py``) that
            faults ``--fault-rate`` of its calls (drops, resets, delays past the client's timeout,
            5xx, truncated bodies, a lagging head, logs answered empty), and the devnet is
            stopped for ``--outage-s`` halfway and started again from its saved state.

Each campaign starts its own devnet (a block a second) and store, sends ``--transfers`` signed
transfers at ``--rate`` per second from two banks paying each other (through any live API
replica, again under the same Idempotency-Key after a connection error), then waits for every
accepted transfer to end and checks: every one terminal (0 lost), none terminal twice, no
instruction settled twice on chain or in two confirmed transactions (0 duplicated), the
reconciliation of the store against the chain clean, the auditor's verifier passing, no 5xx
answer. It prints a table per fault and a summary; exit status 1 if a bar is missed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts._cluster import (  # noqa: E402
    Cluster,
    FinalClock,
    Load,
    Outcome,
    Proc,
    final_undone,
    leader,
    settle_and_check,
    steps_back,
    store_url,
    worker_metrics,
)
from scripts.devnet import Devnet  # noqa: E402
from settlement.chain.rpc import Rpc  # noqa: E402

RECOVERY_S = 10.0
"""After a takeover, how long the stretch without FINAL is looked for (sending, mining, k blocks)."""
DEFAULTS: dict[str, dict[str, Any]] = {
    "failover": {"transfers": 2000, "rate": 12.0, "faults": 6, "every_s": 12.0, "store": "postgresql"},
    "kill9": {"transfers": 1000, "rate": 5.0, "faults": 20, "every_s": 4.0, "store": "sqlite"},
    "reorgs": {"transfers": 1000, "rate": 8.0, "faults": 50, "every_s": 1.6, "store": "sqlite"},
    "rpc": {"transfers": 2000, "rate": 20.0, "faults": 0, "every_s": 0.0, "store": "sqlite"},
    "keys": {"transfers": 1000, "rate": 10.0, "faults": 0, "every_s": 0.0, "store": "sqlite"},
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    for name, value in DEFAULTS[args.campaign].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    random.seed(args.seed)
    campaign = {"failover": failover, "kill9": kill9, "reorgs": reorgs, "rpc": rpc_faults, "keys": key_flood}[
        args.campaign
    ]
    with tempfile.TemporaryDirectory(prefix=f"corridor-{args.campaign}-") as tmp:
        data = Path(args.keep or tmp)
        data.mkdir(parents=True, exist_ok=True)
        # Only the rpc campaign stops and restarts the devnet from its saved state; anvil's periodic
        # state dumps are left out elsewhere.
        saved = data / "devnet" if args.campaign == "rpc" else None
        with Devnet(block_time_s=1, state_dir=saved) as devnet, store_url(args.store, data) as url:
            started = time.monotonic()
            rows, outcome, load = campaign(Cluster(devnet, data, url, _settings(args)), args)
            duration = time.monotonic() - started
    summary = _summary(args, rows, outcome, load, duration)
    _print(args.campaign, rows, summary, outcome)
    if args.json:
        args.json.write_text(json.dumps({"faults": rows, "summary": summary, "problems": outcome.problems}, indent=1))
    return 0 if _passed(summary, outcome) else 1


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("campaign", choices=sorted(DEFAULTS))
    p.add_argument("--transfers", type=int, help=f"transfers sent (default: {_defaults('transfers')})")
    p.add_argument("--rate", type=float, help=f"transfers sent per second (default: {_defaults('rate')})")
    p.add_argument("--faults", type=int, help=f"faults injected, at most (default: {_defaults('faults')})")
    p.add_argument("--every-s", type=float, help=f"seconds between faults, about (default: {_defaults('every_s')})")
    p.add_argument("--depth-max", type=int, default=6, help="deepest reorganisation (reorgs; k is one more)")
    p.add_argument("--fault-rate", type=float, default=0.1, help="share of the node's JSON-RPC calls faulted (rpc)")
    p.add_argument("--outage-s", type=float, default=10.0, help="the devnet stopped this long, once (rpc)")
    p.add_argument("--flooders", type=int, default=4, help="threads sending wrong API keys (keys)")
    p.add_argument(
        "--no-rate-limits", action="store_true", help="the node's rate limits off, to compare with them on (keys)"
    )
    p.add_argument("--lease-s", type=float, default=10.0, help="the pipeline lease (CORRIDOR_NODE_LEASE_TTL_S)")
    p.add_argument("--apis", type=int, default=2, help="API replicas (failover; kill9 runs one)")
    p.add_argument("--workers", type=int, default=2, help="workers (failover; kill9 runs one)")
    p.add_argument(
        "--store", choices=["sqlite", "postgresql"], help=f"the node's store (default: {_defaults('store')})"
    )
    p.add_argument("--timeout-s", type=float, default=300.0, help="for every transfer to end after the load")
    p.add_argument("--seed", type=int, default=1, help="random moments and targets (kill9)")
    p.add_argument("--keep", type=Path, help="keep the data directory (logs, store) here")
    p.add_argument("--json", type=Path, help="also write the figures to this file")
    return p


def _defaults(name: str) -> str:
    return ", ".join(
        f"{campaign} {values[name]:g}" if not isinstance(values[name], str) else f"{campaign} {values[name]}"
        for campaign, values in DEFAULTS.items()
        if values[name]
    )


def _settings(args: argparse.Namespace) -> dict[str, str]:
    settings = {"CORRIDOR_NODE_LEASE_TTL_S": str(args.lease_s), "CORRIDOR_NODE_RECONCILE_INTERVAL_S": "0"}
    if args.no_rate_limits:
        settings |= {"CORRIDOR_NODE_RATE_LIMIT_KEY_PER_S": "0", "CORRIDOR_NODE_AUTH_FAILURES_PER_S": "0"}
    if args.campaign == "reorgs":  # k deeper than any reorganisation: FINAL must never be undone
        settings["CORRIDOR_NODE_CONFIRMATIONS"] = str(args.depth_max + 1)
    return settings


def _start(
    cluster: Cluster, apis: int, workers: int, args: argparse.Namespace, load: bool = True
) -> tuple[FinalClock, Load]:
    cluster.deploy()
    for _ in range(apis):
        cluster.add("api")
    for _ in range(workers):
        cluster.add("worker")
    leader(cluster, args.lease_s * 3)
    sending = Load(cluster, args.transfers if load else 0, args.rate)
    return FinalClock(cluster.store_url), sending.start()


def failover(cluster: Cluster, args: argparse.Namespace) -> tuple[list[dict[str, Any]], Outcome, Load]:
    """Kill, stop, stop, kill, ...: the leader each time; restarted or resumed after another took over."""
    clock, load = _start(cluster, args.apis, args.workers, args)
    rows: list[dict[str, Any]] = []
    led: set[str] = {leader(cluster, args.lease_s * 3)[0].name}
    try:
        for fault in itertools.islice(itertools.cycle(["kill", "stop", "stop"]), args.faults):
            if load.done.wait(args.every_s):
                break
            row = _fail_leader(cluster, fault, args)
            row["led_before"] = row["new_leader"] in led
            led.add(row["new_leader"])
            rows.append(row)
            print(f"  {fault} {row['victim']}: {row['new_leader']} leads after {row['takeover_s']} s", flush=True)
        load.thread.join()
        outcome = settle_and_check(cluster, load.accepted, args.timeout_s)
        for row in rows:
            at = row.pop("at")
            row["no_final_s"] = round(clock.longest_gap_around(at, at + row["takeover_s"] + RECOVERY_S), 1)
        outcome.longest_no_final_s = round(clock.longest_gap(), 1)
    finally:
        clock.stop()
        cluster.stop_all()
    return rows, outcome, load


def _fail_leader(cluster: Cluster, fault: str, args: argparse.Namespace) -> dict[str, Any]:
    victim, _ = leader(cluster, args.lease_s * 3)
    before = worker_metrics(victim) or {}
    at = time.monotonic()
    cluster.signal(victim, signal.SIGKILL if fault == "kill" else signal.SIGSTOP)
    new, took = leader(cluster, args.lease_s * 3 + 10, besides=victim)
    takeover_s = time.monotonic() - at
    fenced = 0.0
    if fault == "kill":
        cluster.start(victim)  # under its own name again: a follower, since another holds a live lease
    else:
        time.sleep(2.0)  # the new leader works meanwhile
        cluster.signal(victim, signal.SIGCONT)
        time.sleep(3.0)  # the deposed leader wakes mid-round: whatever it tries now must be refused
        after = worker_metrics(victim) or {}
        fenced = sum(after.get(k, 0) - before.get(k, 0) for k in ("fenced_writes", "fenced_sends"))
    figures = worker_metrics(new) or {}
    return {
        "fault": "SIGKILL" if fault == "kill" else "SIGSTOP",
        "victim": victim.name,
        "new_leader": new.name,
        "takeover_s": round(takeover_s, 1),
        "epoch": int(figures.get("epoch", 0)),
        "fenced_after_waking": int(fenced),
        "at": at,
    }


def kill9(cluster: Cluster, args: argparse.Namespace) -> tuple[list[dict[str, Any]], Outcome, Load]:
    """SIGKILL the API, the worker or both at random moments; start them again at once."""
    clock, load = _start(cluster, 1, 1, args)
    api, worker = cluster.apis()[0], cluster.workers()[0]
    targets: dict[str, list[Proc]] = {"api": [api], "worker": [worker], "both": [api, worker]}
    rows: list[dict[str, Any]] = []
    try:
        for n in range(args.faults):
            if load.done.wait(args.every_s * random.uniform(0.5, 1.5)):
                break
            target = random.choice(sorted(targets))
            at = time.monotonic()
            for proc in targets[target]:
                cluster.signal(proc, signal.SIGKILL)
            for proc in targets[target]:
                cluster.start(proc)
            rows.append({"kill": n + 1, "target": target, "restart_s": round(time.monotonic() - at, 1), "at": at})
            print(f"  kill {n + 1}: {target}, back in {rows[-1]['restart_s']} s", flush=True)
        load.thread.join()
        outcome = settle_and_check(cluster, load.accepted, args.timeout_s)
        for row in rows:
            at = row.pop("at")
            row["next_final_s"] = clock.next_after(at)
        outcome.longest_no_final_s = round(clock.longest_gap(), 1)
    finally:
        clock.stop()
        cluster.stop_all()
    return rows, outcome, load


def reorgs(cluster: Cluster, args: argparse.Namespace) -> tuple[list[dict[str, Any]], Outcome, Load]:
    """``anvil_reorg`` of a random depth (1 to ``--depth-max``) every few seconds, with k deeper than
    any of them: after each, every FINAL transfer's settlement must still be where the node said."""
    clock, load = _start(cluster, 1, 1, args)
    rpc = Rpc(cluster.devnet.url)
    rows: list[dict[str, Any]] = []
    try:
        for n in range(args.faults):
            if load.done.wait(args.every_s * random.uniform(0.5, 1.5)):
                break
            depth = random.randint(1, args.depth_max)
            head = cluster.devnet.reorg(depth)
            rows.append({"reorg": n + 1, "depth": depth, "head": head, "final_undone": final_undone(cluster, rpc)})
        load.thread.join()
        outcome = settle_and_check(cluster, load.accepted, args.timeout_s)
        stepped = steps_back(cluster)
        undone = sum(r["final_undone"] for r in rows)
        if undone:
            outcome.problems.append(f"{undone} FINAL settlements undone by a reorganisation shallower than k")
        print(f"steps back after reorganisations: {stepped}; FINAL settlements undone: {undone}")
        outcome.longest_no_final_s = round(clock.longest_gap(), 1)
    finally:
        clock.stop()
        cluster.stop_all()
        rpc.close()
    return rows, outcome, load


def rpc_faults(cluster: Cluster, args: argparse.Namespace) -> tuple[list[dict[str, Any]], Outcome, Load]:
    """The node's JSON-RPC through a proxy that faults ``--fault-rate`` of the calls, and the devnet
    stopped for ``--outage-s`` halfway through the load and started again from its saved state."""
    from tests.faults.rpc_proxy import RpcProxy

    with RpcProxy(cluster.devnet.url, fault_rate=0.0, seed=args.seed) as proxy:
        cluster.rpc_url = proxy.url
        clock, load = _start(cluster, 1, 1, args)
        proxy.fault_rate = args.fault_rate
        rows: list[dict[str, Any]] = []
        try:
            outage = {"fault": "devnet stopped", "injected": 1, "seconds": args.outage_s}
            if not load.done.wait(args.transfers / args.rate / 2):
                at = time.monotonic()
                cluster.devnet.stop()
                time.sleep(args.outage_s)
                cluster.devnet.start()
                print(f"  the devnet was down for {time.monotonic() - at:.1f} s", flush=True)
                rows.append(outage | {"at": at})
            load.thread.join()
            proxy.fault_rate = 0.0  # the checks read the chain through the node's export: no faults now
            outcome = settle_and_check(cluster, load.accepted, args.timeout_s)
            for row in rows:
                at = row.pop("at")
                row["next_final_s"] = clock.next_after(at)
            calls = proxy.calls
            rows += [{"fault": kind, "injected": n, "of_calls": calls} for kind, n in sorted(proxy.counts.items())]
            outcome.longest_no_final_s = round(clock.longest_gap(), 1)
        finally:
            clock.stop()
            cluster.stop_all()
    return rows, outcome, load


def key_flood(cluster: Cluster, args: argparse.Namespace) -> tuple[list[dict[str, Any]], Outcome, Load]:
    """``--transfers`` requests with wrong API keys from one address (``--flooders`` threads), while a
    bank sends signed transfers at ``--rate``: the flood meets 429, the bank's latency is compared
    with its latency alone, and everything the bank sent must settle."""
    clock, load = _start(cluster, 1, 1, args, load=False)
    api = cluster.apis()[0]
    url = f"http://127.0.0.1:{api.port}/v1/transfers"
    bank = cluster.keys["FATLUS33"]
    try:
        _latencies(url, cluster.keys["RHNLDEFF"], 1)  # both banks' keys known good before the flood
        alone = _latencies(url, bank, 200)
        # The flood from a process of its own (as an attacker's would be), not from threads that would
        # take this process's interpreter lock from the bank's requests being timed.
        flood = subprocess.Popen(
            [sys.executable, "-c", FLOOD, url, str(args.transfers), str(args.flooders)], stdout=subprocess.PIPE
        )
        time.sleep(1.0)
        during = _latencies(url, bank, 200)
        out, _ = flood.communicate(timeout=600)
        answers: Counter[int] = Counter({int(k): v for k, v in json.loads(out).items()})
        load = Load(cluster, 50, args.rate).start()
        load.thread.join()
        outcome = settle_and_check(cluster, load.accepted, args.timeout_s)
        outcome.longest_no_final_s = round(clock.longest_gap(), 1)
    finally:
        clock.stop()
        cluster.stop_all()
    rows = [{"answer": status, "injected": n, "of": args.transfers} for status, n in sorted(answers.items())] + [
        {"bank_latency": "alone", "p50_ms": _ms(alone, 0.5), "p99_ms": _ms(alone, 0.99)},
        {"bank_latency": "during the flood", "p50_ms": _ms(during, 0.5), "p99_ms": _ms(during, 0.99)},
        {"bank_latency": "ratio", "p50_ms": round(_ms(during, 0.5) / _ms(alone, 0.5), 2)},
    ]
    return rows, outcome, load


def _latencies(url: str, key: str, count: int) -> list[float]:
    out = []
    with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
        for _ in range(count):
            started = time.perf_counter()
            assert http.get(url, params={"limit": 1}).status_code == 200
            out.append(time.perf_counter() - started)
    return sorted(out)


FLOOD = """
import collections, json, sys, httpx
from concurrent.futures import ThreadPoolExecutor
url, count, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def one(n):
    return httpx.get(url, headers={"Authorization": f"Bearer cor_wrong_{n}"}, timeout=30).status_code
with ThreadPoolExecutor(threads) as pool:
    print(json.dumps(collections.Counter(pool.map(one, range(count)))))
"""
"""Requests with wrong API keys, from one address (127.0.0.1), printing how they were answered."""


def _ms(sorted_s: list[float], q: float) -> float:
    return round(1000 * sorted_s[int(q * (len(sorted_s) - 1))], 1)


def _summary(
    args: argparse.Namespace, rows: list[dict[str, Any]], outcome: Outcome, load: Load, duration: float
) -> dict[str, Any]:
    gaps = [r.get("no_final_s", r.get("next_final_s", 0.0)) for r in rows]
    return {
        "load": f"{args.transfers} at {args.rate:g}/s",
        "faults": sum(int(r.get("injected", 1)) for r in rows if "bank_latency" not in r),
        "duration_s": round(duration, 1),
        "accepted": outcome.accepted,
        "terminal": outcome.terminal,
        "final": outcome.final,
        "lost": outcome.lost,
        "duplicated": outcome.duplicated,
        "max_without_final_s": max(gaps, default=0.0),
        "longest_no_final_s": outcome.longest_no_final_s,
        "max_takeover_s": max((r["takeover_s"] for r in rows if "takeover_s" in r), default=None),
        "responses_5xx": load.server_errors,
        "refused": dict(load.refused),
        "unreachable_retried": load.unreachable,
        "rate_limited_retried": load.rate_limited,
    }


def _passed(summary: dict[str, Any], outcome: Outcome) -> bool:
    return not outcome.problems and summary["lost"] == 0 and summary["duplicated"] == 0 and not summary["responses_5xx"]


def _print(campaign: str, rows: list[dict[str, Any]], summary: dict[str, Any], outcome: Outcome) -> None:
    if rows:
        columns = list(dict.fromkeys(c for r in rows for c in r))
        widths = [max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns]
        print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
        for row in rows:
            print("  ".join(str(row.get(c, "")).ljust(w) for c, w in zip(columns, widths, strict=True)))
    print(f"\n{campaign}: " + ", ".join(f"{k} {v}" for k, v in summary.items()))
    print(f"statuses: {outcome.statuses}")
    for problem in outcome.problems:
        print(f"PROBLEM: {problem}")
    print("PASS" if _passed(summary, outcome) else "FAIL")


if __name__ == "__main__":
    sys.exit(main())
