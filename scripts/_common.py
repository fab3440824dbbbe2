"""What the operator scripts share: connection and key options, and one-line errors."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from web3 import Web3

from settlement.chain import connect
from settlement.chain.keys import load_key
from settlement.errors import CorridorError
from settlement.manifest import DEFAULT_PATH

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=description,
        epilog=(
            "Keys come from CORRIDOR_<ROLE>_KEY environment variables, or from "
            "--keystore DIR (<role>.json, password in CORRIDOR_KEYSTORE_PASSWORD), "
            "or, on a development chain (id 31337) only, from --devnet."
        ),
    )
    p.add_argument(
        "--rpc-url",
        default=os.environ.get("CORRIDOR_RPC_URL", "http://127.0.0.1:8545"),
        help="JSON-RPC endpoint (default $CORRIDOR_RPC_URL or http://127.0.0.1:8545)",
    )
    p.add_argument(
        "--manifest",
        type=Path,
        default=DEFAULT_PATH,
        help=f"deployment manifest (default $CORRIDOR_MANIFEST or {DEFAULT_PATH})",
    )
    p.add_argument("--keystore", type=Path, help="directory of encrypted key files")
    p.add_argument("--devnet", action="store_true", help="use the well-known development keys (chain 31337)")
    return p


class Context:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.w3: Web3 = connect(args.rpc_url)
        self.chain_id = self.w3.eth.chain_id

    def key(self, role: str) -> str:
        return load_key(role, keystore=self.args.keystore, chain_id=self.chain_id, devnet=self.args.devnet)


def run(main: Callable[[], int]) -> None:
    """Run a script's main, turning Corridor's errors into one line on stderr and exit 2."""
    try:
        code = main()
    except CorridorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)
