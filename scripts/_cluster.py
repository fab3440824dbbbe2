"""A node cluster for fault campaigns: a devnet, a store, API replicas and workers as child
processes that a campaign kills, stops and restarts; a paced load of signed transfers sent
through any live replica; a clock of FINAL transitions; and the checks every campaign ends
with (nothing lost, nothing duplicated, the chain and the store agree, the audit passes).
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, func, select, text

from node.bank.client import BankClient, NodeError, NodeUnreachable
from node.chain.finality import Finality
from node.config import DEVNET_AUDITOR_API_KEY
from node.ops.reconcile import reconcile
from node.store.db import Store
from node.store.models import ChainTx, Transfer, TransferEvent
from scripts.devnet import Devnet, free_port
from scripts.network import Network, build_network, onboard_node
from settlement.audit import run_audit
from settlement.chain import connect
from settlement.chain.events import decode_log
from settlement.chain.rpc import Rpc
from settlement.lifecycle import TERMINAL

ROOT = Path(__file__).resolve().parent.parent
START_WITHIN_S = 60.0
ROUTES = (("FATLUS33", "RHNLDEFF", "USD", "EUR"), ("RHNLDEFF", "FATLUS33", "EUR", "USD"))
"""Two banks paying each other: the queue always nets, so a stretch without FINAL is the fault's."""
SETTLING = ("InstructionNetted", "InstructionEscrowed", "InstructionSettled", "InstructionRefunded")


@contextmanager
def store_url(kind: str, data: Path) -> Iterator[str]:
    """A store for the cluster: SQLite in ``data``, or a PostgreSQL database of its own (on the server
    ``CORRIDOR_TEST_POSTGRES_URL`` names, else a throwaway server started here)."""
    if kind == "sqlite":
        yield f"sqlite:///{data / 'node.db'}"
        return
    server = os.environ.get("CORRIDOR_TEST_POSTGRES_URL", "")
    pgdir = data / "postgres"
    if not server:
        out = subprocess.run(
            ["scripts/test_postgres.sh", "start", str(pgdir)], cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout
        server = out.strip().split("=", 1)[1]
    try:
        with postgres_database(server, "corridor_faults") as url:
            yield url
    finally:
        if pgdir.exists():
            subprocess.run(["scripts/test_postgres.sh", "stop", str(pgdir)], cwd=ROOT, check=False)


@contextmanager
def postgres_database(server: str, prefix: str) -> Iterator[str]:
    """A database of its own on the PostgreSQL ``server`` (a URL), dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class Proc:
    """One child process of the cluster: an API replica (``port``) or a worker (``metrics_port``)."""

    role: str
    index: int
    port: int
    popen: subprocess.Popen[bytes] | None = None
    stopped: bool = False

    @property
    def name(self) -> str:
        return f"{self.role}-{self.index}"

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None


@dataclass
class Cluster:
    devnet: Devnet
    data: Path
    store_url: str
    settings: dict[str, str]
    network: Network = field(init=False)
    keys: dict[str, str] = field(init=False)
    procs: list[Proc] = field(default_factory=list)
    rpc_url: str = ""
    """Where the node's processes reach the chain (a fault-injecting proxy); default: the devnet."""
    _store: Store | None = None

    @property
    def store(self) -> Store:
        """The cluster's store, as the campaign reads it."""
        if self._store is None:
            self._store = Store(self.store_url)
        return self._store

    def deploy(self) -> None:
        self.devnet.set_fast_mining(True)
        self.network = build_network(connect(self.devnet.url), self.data / "manifest.json")
        self.devnet.set_fast_mining(False)
        self.keys = onboard_node(self.store_url, self.network.manifest, self.network.participants)

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "CORRIDOR_NODE_DATA_DIR": str(self.data),
            "CORRIDOR_RPC_URL": self.rpc_url or self.devnet.url,
            "CORRIDOR_MANIFEST": str(self.data / "manifest.json"),
            "CORRIDOR_NODE_DATABASE_URL": self.store_url,
            "CORRIDOR_FX_PROVIDERS": "ecb,static",
            **self.settings,
        }

    def add(self, role: str) -> Proc:
        proc = Proc(role, sum(p.role == role for p in self.procs) + 1, free_port())
        self.procs.append(proc)
        self.start(proc)
        return proc

    def start(self, proc: Proc) -> None:
        node = [sys.executable, "-m", "scripts.corridor", "node"]
        if proc.role == "api":
            command = [*node, "serve", "--no-worker", "--port", str(proc.port), "--log-level", "warning"]
        else:
            command = [*node, "worker", "--metrics-port", str(proc.port), "--log-level", "info"]
        with open(self.data / f"{proc.name}.log", "ab") as log:
            proc.popen = subprocess.Popen(command, cwd=ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT)
        proc.stopped = False
        path = "/healthz" if proc.role == "api" else "/metrics"
        deadline = time.monotonic() + START_WITHIN_S
        while time.monotonic() < deadline:
            if not proc.alive():
                raise SystemExit(f"{proc.name} exited: see {self.data / f'{proc.name}.log'}")
            try:
                if httpx.get(f"http://127.0.0.1:{proc.port}{path}", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise SystemExit(f"{proc.name} did not start within {START_WITHIN_S:g} s")

    def signal(self, proc: Proc, sig: signal.Signals) -> None:
        assert proc.popen is not None
        proc.popen.send_signal(sig)
        if sig == signal.SIGKILL:
            proc.popen.wait(timeout=10)
        proc.stopped = sig == signal.SIGSTOP

    def apis(self) -> list[Proc]:
        return [p for p in self.procs if p.role == "api"]

    def workers(self) -> list[Proc]:
        return [p for p in self.procs if p.role == "worker"]

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.alive():
                assert proc.popen is not None
                if proc.stopped:
                    proc.popen.send_signal(signal.SIGCONT)
                proc.popen.terminate()
        for proc in self.procs:
            if proc.popen is not None:
                try:
                    proc.popen.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.popen.kill()
        if self._store is not None:
            self._store.dispose()


def worker_metrics(proc: Proc) -> dict[str, float] | None:
    """The worker's own figures from its /metrics (None: it does not answer, e.g. stopped)."""
    if not proc.alive() or proc.stopped:
        return None
    try:
        body = httpx.get(f"http://127.0.0.1:{proc.port}/metrics", timeout=0.5).text
    except httpx.HTTPError:
        return None
    wanted = {
        "corridor_worker_leader": "leader",
        "corridor_worker_lease_epoch": "epoch",
        'corridor_worker_fenced_total{action="write"}': "fenced_writes",
        'corridor_worker_fenced_total{action="broadcast"}': "fenced_sends",
        "corridor_txs_resigned_total": "resigned",
        'corridor_txs_ended_total{status="dropped"}': "dropped",
    }
    out = dict.fromkeys(wanted.values(), 0.0)
    for line in body.splitlines():
        name, _, value = line.rpartition(" ")
        if name in wanted:
            out[wanted[name]] = float(value)
    return out


def leader(cluster: Cluster, timeout_s: float, besides: Proc | None = None) -> tuple[Proc, float]:
    """The worker that leads (another than ``besides``), and how long it took to find one."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        for proc in cluster.workers():
            figures = worker_metrics(proc)
            if proc is not besides and figures and figures["leader"] == 1:
                return proc, time.monotonic() - started
        time.sleep(0.1)
    raise SystemExit(f"no worker led within {timeout_s:g} s")


class Load:
    """``transfers`` signed transfers at ``rate_per_s``, each submitted through a live API replica
    (another one after a connection error, the same Idempotency-Key every time)."""

    def __init__(self, cluster: Cluster, transfers: int, rate_per_s: float, concurrency: int = 8) -> None:
        self.cluster, self.transfers, self.rate_per_s, self.concurrency = cluster, transfers, rate_per_s, concurrency
        self.accepted: dict[str, float] = {}
        self.refused: Counter[str] = Counter()
        self.server_errors = 0
        self.unreachable = 0
        self.rate_limited = 0
        self._nonces = {bic: itertools.count() for bic, *_ in ROUTES}
        self._lock = threading.Lock()
        self._local = threading.local()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.done = threading.Event()

    def start(self) -> Load:
        self.begin = time.monotonic()
        self.thread.start()
        return self

    def _run(self) -> None:
        with ThreadPoolExecutor(self.concurrency) as pool:
            list(pool.map(self._send, range(self.transfers)))
        self.done.set()

    def _client(self, bic: str, api: Proc) -> BankClient:
        clients: dict[tuple[str, int], BankClient] = self._local.__dict__.setdefault("clients", {})
        if (bic, api.port) not in clients:
            p = next(p for p in self.cluster.network.participants if p.bic == bic)
            url = f"http://127.0.0.1:{api.port}"
            clients[bic, api.port] = BankClient(url, self.cluster.keys[bic], p.key, retries_max=0, timeout_s=30)
        return clients[bic, api.port]

    def _send(self, job: int) -> None:
        time.sleep(max(0.0, self.begin + job / self.rate_per_s - time.monotonic()))
        debtor, creditor, sell, buy = ROUTES[job % len(ROUTES)]
        with self._lock:
            nonce = next(self._nonces[debtor])
        body: dict[str, Any] | None = None
        deadline = time.monotonic() + 180
        for attempt in itertools.count():
            apis = [a for a in self.cluster.apis() if a.alive()] or self.cluster.apis()
            client = self._client(debtor, apis[(job + attempt) % len(apis)])
            try:
                if body is None:
                    body = client.build(creditor, sell, 1_000 + job % 97, buy, nonce=nonce)[1]
                started = time.time()
                client.submit(body)
            except NodeUnreachable:
                with self._lock:
                    self.unreachable += 1
            except NodeError as exc:
                with self._lock:
                    if exc.status == 429 and exc.code == "rate_limited":
                        self.rate_limited += 1  # as a bank does: wait as told, send again
                    elif exc.status < 500:
                        self.refused[exc.code] += 1
                        return
                    else:
                        self.server_errors += 1
            else:
                with self._lock:
                    self.accepted[body["instruction"]["id"]] = started
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"transfer {job} found no replica to take it within 180 s")
            time.sleep(0.2 + random.random() * 0.3)


class FinalClock:
    """Samples how many transfers are FINAL, to find the stretches without a new one."""

    def __init__(self, store_url: str, every_s: float = 0.2) -> None:
        self.store = Store(store_url)
        self.every_s = every_s
        self.rises: list[float] = []
        """Monotonic times at which the FINAL count was seen to grow."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        last = 0
        while not self._stop.wait(self.every_s):
            try:
                with self.store.transaction(write=False) as s:
                    count = s.scalar(select(func.count()).select_from(Transfer).where(Transfer.status == "FINAL")) or 0
            except Exception:  # the store is busy or restarting: the next sample tells
                continue
            if count > last:
                self.rises.append(time.monotonic())
                last = count

    def longest_gap_around(self, start: float, end: float) -> float:
        """The longest stretch without a new FINAL that overlaps ``start``..``end`` (a fault and its
        recovery): from the last new FINAL before ``start`` to the first after ``end``."""
        before = max((t for t in self.rises if t <= start), default=start)
        after = min((t for t in self.rises if t > end), default=time.monotonic())
        inside = [before, *(t for t in self.rises if start < t <= end), after]
        return max(b - a for a, b in itertools.pairwise(inside))

    def next_after(self, at: float) -> float:
        """Seconds from ``at`` (a fault) to the next new FINAL (nan: none came)."""
        return round(min((t for t in self.rises if t > at), default=float("nan")) - at, 1)

    def longest_gap(self) -> float:
        return max((b - a for a, b in itertools.pairwise(self.rises)), default=0.0)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.store.dispose()


def final_undone(cluster: Cluster, rpc: Rpc) -> int:
    """FINAL transfers whose settlement is no longer where the node recorded it (a reorganisation undid it)."""
    with cluster.store.transaction(write=False) as s:
        refs = s.execute(
            select(TransferEvent.tx_hash, TransferEvent.block_number, func.count())
            .where(TransferEvent.status == "FINAL")
            .group_by(TransferEvent.tx_hash, TransferEvent.block_number)
        ).all()
    if not refs:
        return 0
    receipts = rpc.batch([("eth_getTransactionReceipt", [tx_hash]) for tx_hash, _, _ in refs])
    return sum(
        n
        for (_, block, n), receipt in zip(refs, receipts, strict=True)
        if receipt is None or int(receipt["blockNumber"], 16) != block
    )


def steps_back(cluster: Cluster) -> int:
    """Transfers the watcher stepped back because a reorganisation undid their events."""
    with cluster.store.transaction(write=False) as s:
        return s.scalar(select(func.count()).select_from(TransferEvent).where(TransferEvent.code == "reorg")) or 0


@dataclass
class Outcome:
    accepted: int
    terminal: int
    lost: int
    duplicated: int
    final: int
    statuses: dict[str, int]
    problems: list[str]
    longest_no_final_s: float = 0.0
    """The longest stretch without a new FINAL in the whole run."""


def settle_and_check(cluster: Cluster, accepted: Iterable[str], timeout_s: float) -> Outcome:
    """Wait until every accepted transfer is terminal (or ``timeout_s``), then check the store
    against the chain: each transfer terminal once, each instruction on chain once, one confirmed
    transaction per instruction and stage, reconciliation and the audit clean."""
    store = Store(cluster.store_url)
    ids = set(accepted)
    deadline = time.monotonic() + timeout_s
    while True:
        with store.transaction(write=False) as s:
            rows = dict(s.execute(select(Transfer.id, Transfer.status)).tuples().all())
        open_ = [i for i in ids if rows.get(i) not in TERMINAL]
        if not open_ or time.monotonic() > deadline:
            break
        time.sleep(1)
    problems = [f"{len(open_)} accepted transfers not terminal, e.g. {open_[0]}: {rows.get(open_[0])}"] if open_ else []
    duplicated = _duplicates(store, cluster, problems)
    _reconcile_and_audit(store, cluster, problems)
    store.dispose()
    statuses = Counter(rows[i] for i in ids if i in rows)
    return Outcome(
        accepted=len(ids),
        terminal=sum(n for s, n in statuses.items() if s in TERMINAL),
        lost=len(open_) + len(ids - set(rows)),
        duplicated=duplicated,
        final=statuses.get("FINAL", 0),
        statuses=dict(statuses),
        problems=problems,
    )


def _duplicates(store: Store, cluster: Cluster, problems: list[str]) -> int:
    """Transfers in two terminal states, instructions settled twice on chain, or in two confirmed
    transactions of one kind."""
    with store.transaction(write=False) as s:
        terminal = Counter(
            s.scalars(select(TransferEvent.transfer_id).where(TransferEvent.status.in_([t.value for t in TERMINAL])))
        )
        in_txs: Counter[tuple[str, str]] = Counter()
        for kind, payload in s.execute(select(ChainTx.kind, ChainTx.payload).where(ChainTx.status == "confirmed")):
            for tid in (payload or {}).get("transfer_ids", []):
                in_txs[kind, tid] += 1
    twice = [t for t, n in terminal.items() if n > 1]
    two_txs = [k for k, n in in_txs.items() if n > 1]
    w3 = cluster.network.w3
    logs = w3.eth.get_logs({"address": cluster.network.manifest.vault, "fromBlock": 0, "toBlock": "latest"})  # type: ignore[typeddict-item]
    events = [e for e in map(decode_log, logs) if e is not None and e.name in SETTLING]
    on_chain = Counter((e.name, e.args.get("id")) for e in events)
    chain_twice = [k for k, n in on_chain.items() if n > 1]
    for label, found in (("terminal twice", twice), ("in two confirmed txs", two_txs), ("on chain twice", chain_twice)):
        if found:
            problems.append(f"{len(found)} {label}, e.g. {found[0]}")
    return len(set(twice) | {t for _, t in two_txs} | {i for _, i in chain_twice})


def _reconcile_and_audit(store: Store, cluster: Cluster, problems: list[str]) -> None:
    confirmations = int(cluster.settings.get("CORRIDOR_NODE_CONFIRMATIONS", "3"))
    outcome = reconcile(
        store, cluster.devnet.url, cluster.network.manifest, Finality(confirmations=confirmations), "campaign"
    )
    if outcome.differences:
        problems.append(f"reconciliation: {len(outcome.differences)} differences, e.g. {outcome.differences[0]}")
    api = next((a for a in cluster.apis() if a.alive()), None)
    against = f"http://127.0.0.1:{api.port}" if api else None
    report = run_audit(cluster.devnet.url, cluster.data / "manifest.json", against, DEVNET_AUDITOR_API_KEY).report
    if not report.passed:
        failed = [c.key for c in report.checks if not c.passed]
        problems.append(f"audit failed: {', '.join(failed)}")
