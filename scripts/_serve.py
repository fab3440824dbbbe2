"""The node as the operator's scripts run it: ``corridor node serve`` in a child process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from scripts.devnet import Devnet, free_port
from scripts.network import Network, build_network, onboard_node
from settlement.chain import connect

ROOT = Path(__file__).resolve().parent.parent
READY_WITHIN_S = 60.0


def serve_node(
    data_dir: Path,
    rpc_url: str,
    manifest: Path,
    port: int,
    *,
    defaults: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    split: bool = False,
    log_level: str = "warning",
) -> list[subprocess.Popen[bytes]]:
    """The node, its output appended to ``<data_dir>/node.log``: one process (API and pipeline),
    or with ``split`` the API and the pipeline in two. Returns once ``/readyz`` answers 200.

    The child's environment is ``defaults``, then this process's environment, then the data
    directory, chain and manifest given here, then ``env``."""
    placed = {"CORRIDOR_NODE_DATA_DIR": str(data_dir), "CORRIDOR_RPC_URL": rpc_url, "CORRIDOR_MANIFEST": str(manifest)}
    env = {**(defaults or {}), **os.environ, **placed, **(env or {})}
    node = [sys.executable, "-m", "scripts.corridor", "node"]
    api = [*node, "serve", "--port", str(port), "--log-level", log_level, *(["--no-worker"] if split else [])]
    with open(data_dir / "node.log", "ab") as log:
        procs = [subprocess.Popen(api, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)]
        if split:
            worker = [*node, "worker", "--log-level", log_level]
            procs.append(subprocess.Popen(worker, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", procs, data_dir / "node.log")
    except BaseException:
        stop(procs)
        raise
    return procs


def wait_ready(url: str, procs: list[subprocess.Popen[bytes]], log: Path) -> None:
    deadline = time.monotonic() + READY_WITHIN_S
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                raise SystemExit(f"the node exited with code {proc.returncode}: see {log}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"the node was not ready within {READY_WITHIN_S:g} s: see {log}")


def stop(procs: list[subprocess.Popen[bytes]], timeout_s: float = 15.0) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()


@dataclass
class DemoNode:
    network: Network
    api_keys: dict[str, str]
    """The demo banks' API keys, by BIC."""
    url: str
    procs: list[subprocess.Popen[bytes]]


def serve_demo_network(
    data_dir: Path, devnet: Devnet, *, split: bool = False, env: dict[str, str] | None = None
) -> DemoNode:
    """The demo network deployed on ``devnet`` (mined fast meanwhile), and a node serving it from a
    SQLite store in ``data_dir``, pricing from the offline rates (``env``: more of the node's
    settings). Stop it with :func:`stop`."""
    devnet.set_fast_mining(True)
    network = build_network(connect(devnet.url), data_dir / "manifest.json")
    devnet.set_fast_mining(False)
    store_url = f"sqlite:///{data_dir / 'node.db'}"
    keys = onboard_node(store_url, network.manifest, network.participants)
    port = free_port()
    settings = {"CORRIDOR_NODE_DATABASE_URL": store_url, "CORRIDOR_FX_PROVIDERS": "ecb,static", **(env or {})}
    procs = serve_node(data_dir, devnet.url, data_dir / "manifest.json", port, env=settings, split=split)
    return DemoNode(network, keys, f"http://127.0.0.1:{port}", procs)
