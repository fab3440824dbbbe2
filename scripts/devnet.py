"""Start and stop a local anvil devnet (the only code in Corridor that knows about anvil).

    python scripts/devnet.py start --port 8545 --block-time 1 --state-dir .data/devnet
    python scripts/devnet.py stop --state-dir .data/devnet
    python scripts/devnet.py run ...      # in the foreground until Ctrl-C

With a state directory, the chain is saved to ``<dir>/state.json`` on stop and every few
seconds, and loaded on the next start.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 15
MINER_SETTLE_S = 0.3
"""After pausing anvil's interval miner, long enough for a block it is mining to be stored."""


class DevnetError(RuntimeError):
    """The devnet refused a call or is not in the state the call should have left it in."""


def anvil_binary() -> str:
    local = ROOT / "node_modules" / ".bin" / "anvil"
    if local.exists():
        return str(local)
    found = shutil.which("anvil")
    if found:
        return found
    raise SystemExit("anvil is missing: run `npm ci` (the README's commands do it for you)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Devnet:
    """An anvil process on 127.0.0.1; a context manager for tests."""

    def __init__(
        self,
        port: int | None = None,
        block_time_s: float | None = None,
        state_dir: Path | None = None,
        chain_id: int = 31337,
        accounts: int = 20,
    ) -> None:
        self.port = port or free_port()
        self.block_time_s = block_time_s
        self.state_dir = state_dir
        self.chain_id = chain_id
        self.accounts = accounts
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        cmd = [
            anvil_binary(),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--chain-id",
            str(self.chain_id),
            "--accounts",
            str(self.accounts),
            "--balance",
            "1000000",
        ]
        if self.block_time_s:
            cmd += ["--block-time", str(self.block_time_s)]
        if self.state_dir is not None:
            cmd += ["--state", str(self.state_dir / "state.json"), "--state-interval", "5"]
        return cmd

    def start(self, detach: bool = False) -> Devnet:
        if self.state_dir is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            log = open(self.state_dir / "anvil.log", "ab")  # noqa: SIM115 - handed to the child
        else:
            log = open(os.devnull, "wb")  # noqa: SIM115
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", self.port)) == 0:
                raise SystemExit(f"port {self.port} is already in use")
        self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=detach)
        log.close()
        self.wait_ready()
        return self

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise SystemExit(f"anvil exited with code {self.process.returncode}")
            try:
                reply = httpx.post(
                    self.url,
                    json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
                    timeout=1,
                )
                if reply.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise SystemExit(f"anvil did not answer on {self.url} within {START_TIMEOUT_S} s")

    def set_fast_mining(self, fast: bool) -> None:
        """Mine each transaction at once (``fast``) or return to the configured block time.

        For setting a network up quickly; anvil's own RPC methods, so only here.
        """
        calls: list[tuple[str, list[object]]] = [("evm_setAutomine", [True])] if fast else []
        if not fast and self.block_time_s:
            calls = [("evm_setAutomine", [False]), ("evm_setIntervalMining", [int(self.block_time_s)])]
        for method, params in calls:
            self._rpc(method, params)

    def _rpc(self, method: str, params: list[object]) -> object:
        reply = httpx.post(self.url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, timeout=10)
        answer = reply.json()
        if "error" in answer:
            raise DevnetError(f"{method}{tuple(params)!r}: {answer['error']}")
        return answer.get("result")

    def _block(self, tag: str | int) -> dict[str, str]:
        block = self._rpc("eth_getBlockByNumber", [tag if isinstance(tag, str) else hex(tag), False])
        if not isinstance(block, dict):
            raise DevnetError(f"block {tag} is missing")
        return block

    def reorg(self, depth: int) -> int:
        """Replace the last ``depth`` blocks with as many empty ones (``anvil_reorg``); return the head.

        anvil's interval miner runs beside the reorganisation without a lock between them: a block
        mined while the reorganisation unwinds lands on the old head, and the chain is left with a
        gap and a state that no longer follows its blocks (seen as blocks missing by number and
        the vault's counters jumping). So the miner is paused for the reorganisation, a block in
        flight is let finish, and the chain is checked to link from the common ancestor to the head.
        """
        if self.block_time_s:
            self._rpc("evm_setIntervalMining", [0])
            time.sleep(MINER_SETTLE_S)
        try:
            head = int(self._block("latest")["number"], 16)
            common = self._block(head - depth)["hash"]
            self._rpc("anvil_reorg", [depth, []])
            parent = common
            for number in range(head - depth + 1, head + 1):
                block = self._block(number)
                if block["parentHash"] != parent:
                    raise DevnetError(f"after a reorganisation of depth {depth} block {number} does not link")
                parent = block["hash"]
            if int(self._block("latest")["number"], 16) != head:
                raise DevnetError(f"a reorganisation of depth {depth} at block {head} moved the head")
            return head
        finally:
            if self.block_time_s:
                self._rpc("evm_setIntervalMining", [int(self.block_time_s)])

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)  # anvil saves its state on SIGINT
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> Devnet:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _pid_file(state_dir: Path) -> Path:
    return state_dir / "anvil.pid"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Start and stop a local anvil devnet.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("start", "start anvil in the background and return"),
        ("run", "run anvil in the foreground until Ctrl-C"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--port", type=int, default=8545, help="JSON-RPC port (default 8545)")
        p.add_argument(
            "--block-time",
            type=float,
            default=1.0,
            help="seconds between blocks; 0 mines one block per transaction (default 1)",
        )
        p.add_argument(
            "--state-dir",
            type=Path,
            default=Path(".data/devnet"),
            help="where the chain state, log and pid live (default .data/devnet)",
        )
    stop = sub.add_parser("stop", help="stop the anvil started with `start`")
    stop.add_argument("--state-dir", type=Path, default=Path(".data/devnet"))
    args = parser.parse_args(argv)

    if args.command == "stop":
        pid_file = _pid_file(args.state_dir)
        if not pid_file.exists():
            print(f"no devnet running from {args.state_dir}")
            return 0
        pid = int(pid_file.read_text())
        try:
            os.kill(pid, signal.SIGINT)
            for _ in range(STOP_TIMEOUT_S * 10):
                os.kill(pid, 0)
                time.sleep(0.1)
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        pid_file.unlink(missing_ok=True)
        print(f"stopped devnet (pid {pid})")
        return 0

    devnet = Devnet(port=args.port, block_time_s=args.block_time or None, state_dir=args.state_dir)
    devnet.start(detach=args.command == "start")
    assert devnet.process is not None
    if args.command == "start":
        _pid_file(args.state_dir).write_text(str(devnet.process.pid))
        print(f"devnet at {devnet.url} (chain {devnet.chain_id}, pid {devnet.process.pid})")
        return 0
    print(f"devnet at {devnet.url} (chain {devnet.chain_id}); Ctrl-C stops it", flush=True)
    try:
        devnet.process.wait()
    except KeyboardInterrupt:
        devnet.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
