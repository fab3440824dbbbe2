"""Kill -9 the node at named points of the pipeline; after a restart every transfer reaches a
terminal state exactly once, and the chain agrees (one escrow, one settlement per transfer)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from node.bank.client import BankClient
from node.chain.watcher import TOPICS
from node.store.db import Store
from node.store.models import ChainTx, Transfer
from scripts.devnet import free_port
from scripts.network import onboard_node
from settlement.chain.events import decode_log
from settlement.eip712 import uuid_to_id
from tests.conftest import ROOT
from tests.node.conftest import Chain

pytestmark = [pytest.mark.devnet, pytest.mark.slow]
TRANSFERS = 4


def _start(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scripts.corridor", "node", "serve", "--port", str(port), "--log-level", "warning"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError("the node did not start")


@pytest.mark.parametrize(
    ("point", "settlement"),
    [("after_accept", "net"), ("after_send", "net"), ("before_watcher_commit", "net"), ("after_send", "gross")],
)
def test_killed_at_a_point_every_transfer_ends_once(chain: Chain, tmp_path: Path, point: str, settlement: str) -> None:
    """Net (the default) and gross: what is sent is in exactly one transaction that confirmed."""
    url = f"sqlite:///{tmp_path / 'node.db'}"
    keys = onboard_node(url, chain.network.manifest, chain.network.participants)
    env = {
        **os.environ,
        "CORRIDOR_NODE_DATABASE_URL": url,
        "CORRIDOR_RPC_URL": chain.devnet.url,
        "CORRIDOR_MANIFEST": str(chain.manifest_path),
        "CORRIDOR_NODE_DATA_DIR": str(tmp_path),
        "CORRIDOR_FX_PROVIDERS": "ecb",
        "CORRIDOR_NODE_SETTLEMENT": settlement,
    }
    port = free_port()
    bank = next(p for p in chain.network.participants if p.bic == "FATLUS33")
    client = BankClient(f"http://127.0.0.1:{port}", keys["FATLUS33"], bank.key, retries_max=0)

    doomed = _start(env | {"CORRIDOR_NODE_FAILPOINTS": point}, port, tmp_path / "node.log")
    bodies = [client.build("RHNLDEFF", "USD", "100.00", "EUR")[1] for _ in range(TRANSFERS)]
    for body in bodies:
        try:
            client.submit(body)
        except ConnectionError:
            break  # killed while answering: the bank retries with the same Idempotency-Key below
    assert doomed.wait(timeout=60) == -signal.SIGKILL

    survivor = _start(env, port, tmp_path / "node.log")
    try:
        for body in bodies:
            assert client.submit(body)["id"] == body["instruction"]["id"]  # a replay, or the first time
        finals = [client.wait(b["instruction"]["id"], timeout_s=90) for b in bodies]
    finally:
        survivor.terminate()
        survivor.wait(timeout=20)

    for t in finals:
        assert [h["status"] for h in t["history"]].count("FINAL") == 1
    store = Store(url)
    with store.transaction(write=False) as s:
        assert {t.status for t in s.scalars(select(Transfer))} == {"FINAL"}
        assert s.scalar(select(func.count(Transfer.id))) == TRANSFERS
        sent: list[str] = []
        kind = "cycle" if settlement == "net" else "escrow"
        for tx in s.scalars(select(ChainTx).where(ChainTx.kind == kind, ChainTx.status == "confirmed")):
            sent += tx.payload["transfer_ids"]
    store.dispose()
    assert sorted(sent) == sorted(t["id"] for t in finals)  # each in exactly one cycle (or escrow) transaction
    w3 = chain.network.w3
    for t in finals:
        logs = w3.eth.get_logs(
            {
                "address": chain.network.manifest.vault,
                "fromBlock": 0,
                "toBlock": "latest",
                "topics": [TOPICS, "0x" + uuid_to_id(t["id"]).hex()],
            }
        )  # type: ignore[typeddict-item]
        names = sorted(e.name for e in map(decode_log, logs) if e is not None)
        expected = ["InstructionNetted"] if settlement == "net" else ["InstructionEscrowed", "InstructionSettled"]
        assert names == expected, (t["id"], names)
