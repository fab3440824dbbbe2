"""Bring a local Corridor network up and keep it running until Ctrl-C.

Starts anvil (one block per second, state kept under --data-dir), deploys the contracts
(or reuses them if the chain still has them), onboards and funds the demo banks and
liquidity providers, publishes current reference rates, puts the participants in the node's
directory, serves the node (bank API and pipeline), writes the demo credentials and prints
where everything is. Ctrl-C (or SIGTERM) stops the node and the devnet.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from node.config import DEVNET_AUDITOR_API_KEY, DEVNET_OPERATOR_API_KEY
from scripts._serve import serve_node, stop
from scripts.devnet import Devnet
from scripts.network import build_network, onboard_node
from settlement.chain import connect
from settlement.money import format_minor

DEMO_RULES = Path(__file__).resolve().parent / "risk" / "demo-rules.yaml"
"""The demo's risk rules and sanctions list (set CORRIDOR_NODE_RISK_RULES to use others)."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8545, help="devnet JSON-RPC port (default 8545)")
    parser.add_argument("--block-time", type=float, default=1.0, help="seconds per block (default 1)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".data"),
        help="chain state, manifest, node store and demo credentials (default .data)",
    )
    parser.add_argument("--api-port", type=int, default=8000, help="the node's HTTP port (default 8000)")
    args = parser.parse_args()

    state_dir = args.data_dir / "devnet"
    manifest = args.data_dir / "manifest.json"
    node_db = args.data_dir / "node.db"
    if manifest.exists() and not (state_dir / "state.json").exists():
        manifest.unlink()  # the chain it described is gone, and so is what the node knew of it
        for stale in (node_db, node_db.with_name("node.db-wal"), node_db.with_name("node.db-shm")):
            stale.unlink(missing_ok=True)
    devnet = Devnet(port=args.port, block_time_s=args.block_time, state_dir=state_dir)
    devnet.start()
    node: subprocess.Popen[bytes] | None = None
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        print(f"devnet at {devnet.url} (chain {devnet.chain_id}, a block every {args.block_time} s)")
        devnet.set_fast_mining(True)
        network = build_network(connect(devnet.url), manifest, log=lambda line: print("  " + line))
        devnet.set_fast_mining(False)
        credentials = args.data_dir / "demo-participants.json"
        credentials.write_text(
            json.dumps(
                [
                    {
                        "name": p.name,
                        "kind": p.kind,
                        "bic": p.bic,
                        "country": p.country,
                        "address": p.address,
                        "private_key": p.key,
                        "currencies": list(p.currencies),
                    }
                    for p in network.participants
                ],
                indent=2,
            )
        )
        api_url = f"http://127.0.0.1:{args.api_port}"
        banks_file = write_bank_credentials(args.data_dir, network, api_url, f"sqlite:///{node_db}")
        [node] = serve_node(
            args.data_dir, devnet.url, manifest, args.api_port, defaults={"CORRIDOR_NODE_RISK_RULES": str(DEMO_RULES)}
        )
        vault = network.vault
        print(f"\nvault {network.manifest.vault} on chain {network.manifest.chain_id}")
        print(f"manifest:          {manifest}")
        print(f"node API:          {api_url}  (OpenAPI: {api_url}/docs; log: {args.data_dir / 'node.log'})")
        print(f"console:           {api_url}/console  (operators and auditors, in a browser)")
        print(f"                   sign in with the operator's API key {_key('OPERATOR', DEVNET_OPERATOR_API_KEY)!r}")
        print(f"                   or the auditor's {_key('AUDITOR', DEVNET_AUDITOR_API_KEY)!r} (it reads, never acts)")
        print(f"demo credentials:  {banks_file}  (API keys and signing keys of the demo banks)")
        print(f"                   {credentials}  (development keys: never use them elsewhere)")
        print("participants:")
        for p in network.participants:
            ccy = p.currencies[0]
            balance = format_minor(vault.balance(p.address, ccy).available, ccy)
            print(f"  {p.bic:<12} {p.name:<22} {p.country}  {p.address}  {ccy} {balance:>18}")
        print("\ntry:  .venv/bin/corridor bank send --as FATLUS33 --to RHNLDEFF --sell 250000.00 USD --buy EUR")
        print("      ./run demo     (transfers followed to FINAL, a gridlock one net cycle resolves, risk controls)")
        print("      .venv/bin/corridor fx quote --sell 250000.00 USD --buy EUR --devnet")
        print("Ctrl-C stops the network.", flush=True)
        assert devnet.process is not None
        while devnet.process.poll() is None and node.poll() is None:
            time.sleep(0.5)
        print("the devnet or the node stopped unexpectedly (see the logs under the data directory)")
        return 1
    except KeyboardInterrupt:
        print("\nstopping")
        return 0
    finally:
        if node is not None:
            stop([node])
        devnet.stop()


def write_bank_credentials(data_dir: Path, network: object, api_url: str, store_url: str) -> Path:
    """Onboard the demo participants into the node's store; keep their new API keys in a file.

    On a restart the participants are already there and their keys (shown once) are in the
    file from the first run.
    """
    from scripts.network import Network

    assert isinstance(network, Network)
    path = data_dir / "demo-banks.json"
    keys = onboard_node(store_url, network.manifest, network.participants)
    known = {b["bic"]: b for b in json.loads(path.read_text())["banks"]} if path.exists() else {}
    banks = []
    for p in network.banks():
        api_key = keys.get(p.bic) or known.get(p.bic, {}).get("api_key")
        banks.append(
            {
                "bic": p.bic,
                "name": p.name,
                "country": p.country,
                "address": p.address,
                "currencies": list(p.currencies),
                "private_key": p.key,
                "api_key": api_key,
                "url": api_url,
            }
        )
    path.write_text(json.dumps({"url": api_url, "banks": banks}, indent=2) + "\n")
    return path


def _key(role: str, devnet_default: str) -> str:
    """The key the node was started with: the environment's, else the devnet's well-known one."""
    return os.environ.get(f"CORRIDOR_NODE_{role}_API_KEY", devnet_default)


if __name__ == "__main__":
    sys.exit(main())
