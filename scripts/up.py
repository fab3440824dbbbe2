"""Bring a local Corridor network up and keep it running until Ctrl-C.

Starts anvil (one block per second, state kept under --data-dir), deploys the contracts
(or reuses them if the chain still has them), onboards and funds the demo banks and
liquidity providers, publishes current reference rates, writes the demo credentials and
prints where everything is.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from scripts.devnet import Devnet
from scripts.network import build_network
from settlement.chain import connect
from settlement.money import format_minor


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8545, help="devnet JSON-RPC port (default 8545)")
    parser.add_argument("--block-time", type=float, default=1.0, help="seconds per block (default 1)")
    parser.add_argument("--data-dir", type=Path, default=Path(".data"),
                        help="chain state, manifest and demo credentials (default .data)")  # fmt: skip
    args = parser.parse_args()

    state_dir = args.data_dir / "devnet"
    manifest = args.data_dir / "manifest.json"
    if manifest.exists() and not (state_dir / "state.json").exists():
        manifest.unlink()  # the chain it described is gone
    devnet = Devnet(port=args.port, block_time_s=args.block_time, state_dir=state_dir)
    devnet.start()
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
            )  # fmt: skip
        )
        vault = network.vault
        print(f"\nvault {network.manifest.vault} on chain {network.manifest.chain_id}")
        print(f"manifest:          {manifest}")
        print(f"demo credentials:  {credentials}  (development keys: never use them elsewhere)")
        print("participants:")
        for p in network.participants:
            ccy = p.currencies[0]
            balance = format_minor(vault.balance(p.address, ccy).available, ccy)
            print(f"  {p.bic:<12} {p.name:<22} {p.country}  {p.address}  {ccy} {balance:>18}")
        print(
            "\ntry:  .venv/bin/python scripts/fund.py --devnet --manifest "
            f"{manifest} --rpc-url {devnet.url} --to {network.banks()[0].address} "
            "--currency USD --amount 1000.00"
        )
        print("      .venv/bin/corridor fx quote --sell 250000.00 USD --buy EUR --devnet")
        print("Ctrl-C stops the network.", flush=True)
        assert devnet.process is not None
        devnet.process.wait()
        return 1
    except KeyboardInterrupt:
        print("\nstopping")
        return 0
    finally:
        devnet.stop()


if __name__ == "__main__":
    sys.exit(main())
