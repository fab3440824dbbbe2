"""The one JSON-RPC client of the node and the auditor: batched calls, bounded log ranges, one
kept-alive connection.

The watcher reads hundreds of logs a block and the auditor tens of thousands, so results stay
as the node returns them (hex strings, no per-field formatting) and batches go out as JSON-RPC
batch requests of a bounded size. Contract calls that want typed arguments and results go
through web3 (:mod:`settlement.chain.vault`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import httpx

from settlement.errors import ChainError, RpcUnreachableError

BATCH_SIZE_MAX = 100
"""Requests per JSON-RPC batch."""
RANGE_BLOCKS_MAX = 2_000
"""Blocks per ``eth_getLogs`` call (endpoints commonly refuse much larger ranges)."""
TIMEOUT_S = 30.0

Progress = Callable[[int], None]
"""Told how many units of work (blocks, requests) were just done."""


def _nothing(_: int) -> None:
    return None


class Rpc:
    def __init__(self, url: str, timeout_s: float = TIMEOUT_S) -> None:
        self.url = url
        self._client = httpx.Client(timeout=timeout_s)
        self._id = 0

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Rpc:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def call(self, method: str, params: Sequence[Any]) -> Any:
        """The result of one call; :class:`ChainError` if the node answers with an error."""
        return self.batch([(method, params)])[0]

    def answer(self, method: str, params: Sequence[Any]) -> dict[str, Any]:
        """The whole answer to one call, ``result`` or ``error`` (for callers that read a revert's data)."""
        self._id += 1
        answer = self._post([{"jsonrpc": "2.0", "id": self._id, "method": method, "params": list(params)}])
        if not isinstance(answer, list) or len(answer) != 1 or not isinstance(answer[0], dict):
            raise ChainError(f"{self.url} gave no answer to {method}")
        return dict(answer[0])

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]], progress: Progress = _nothing) -> list[Any]:
        """Results in the order of ``calls``, sent in batches of at most ``BATCH_SIZE_MAX``."""
        results: list[Any] = []
        for start in range(0, len(calls), BATCH_SIZE_MAX):
            chunk = calls[start : start + BATCH_SIZE_MAX]
            first = self._id
            self._id += len(chunk)
            body = [
                {"jsonrpc": "2.0", "id": first + i, "method": method, "params": list(params)}
                for i, (method, params) in enumerate(chunk)
            ]
            answers = self._post(body)
            by_id = {a.get("id"): a for a in answers} if isinstance(answers, list) else {}
            for i, (method, params) in enumerate(chunk):
                answer = by_id.get(first + i)
                if answer is None:
                    raise ChainError(f"{self.url} gave no answer to {method}")
                if "error" in answer:
                    raise ChainError(f"{method}{tuple(params)!r} failed at {self.url}: {answer['error']}")
                results.append(answer["result"])
            progress(len(chunk))
        return results

    def _post(self, body: list[dict[str, Any]]) -> Any:
        try:
            response = self._client.post(self.url, json=body)
            response.raise_for_status()
            return response.json()
        except httpx.HTTPStatusError as exc:
            raise ChainError(f"{self.url} answered HTTP {exc.response.status_code}") from None
        except (httpx.TransportError, ValueError) as exc:
            raise RpcUnreachableError(
                f"no Ethereum JSON-RPC endpoint answers at {self.url} ({type(exc).__name__})"
            ) from None

    def chain_id(self) -> int:
        return int(self.call("eth_chainId", []), 16)

    def block_number(self) -> int:
        return int(self.call("eth_blockNumber", []), 16)

    def logs(
        self,
        addresses: Iterable[str],
        first_block: int,
        last_block: int,
        range_blocks_max: int = RANGE_BLOCKS_MAX,
        progress: Progress = _nothing,
    ) -> list[dict[str, Any]]:
        """Every log of ``addresses`` in ``first_block..last_block``, read ``range_blocks_max`` at a time."""
        if range_blocks_max < 1:
            raise ValueError("range_blocks_max must be at least 1")
        address_list = list(addresses)
        found: list[dict[str, Any]] = []
        start = first_block
        while start <= last_block:
            end = min(start + range_blocks_max - 1, last_block)
            found.extend(
                self.call("eth_getLogs", [{"address": address_list, "fromBlock": hex(start), "toBlock": hex(end)}])
            )
            progress(end - start + 1)
            start = end + 1
        return found

    def blocks(self, numbers: Sequence[int]) -> list[dict[str, Any]]:
        """Block headers (without transactions), in the order of ``numbers``, in batched calls."""
        return list(self.batch([("eth_getBlockByNumber", [hex(n), False]) for n in numbers]))

    def timestamps(self, numbers: Iterable[int], progress: Progress = _nothing) -> dict[int, int]:
        """Block timestamps by block number."""
        wanted = sorted(set(numbers))
        blocks = self.batch([("eth_getBlockByNumber", [hex(n), False]) for n in wanted], progress)
        return {n: int(b["timestamp"], 16) for n, b in zip(wanted, blocks, strict=True)}

    def transactions(self, hashes: Iterable[str], progress: Progress = _nothing) -> dict[str, dict[str, Any]]:
        wanted = sorted(set(hashes))
        txs = self.batch([("eth_getTransactionByHash", [h]) for h in wanted], progress)
        return dict(zip(wanted, txs, strict=True))

    def eth_call(self, to: str, data: bytes, block: int) -> bytes:
        return bytes.fromhex(self.call("eth_call", [{"to": to, "data": "0x" + data.hex()}, hex(block)])[2:])

    def eth_calls(self, calls: Sequence[tuple[str, bytes]], block: int, progress: Progress = _nothing) -> list[bytes]:
        results = self.batch(
            [("eth_call", [{"to": to, "data": "0x" + data.hex()}, hex(block)]) for to, data in calls], progress
        )
        return [bytes.fromhex(r[2:]) for r in results]
