"""What the console reads from the chain: blocks, the vault's events, net cycles. Bounded windows; a chain
that does not answer is reported on the page (``error``), never raised."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from settlement.chain.events import Log, decode_log
from settlement.chain.rpc import Rpc
from settlement.errors import ChainError
from settlement.manifest import Manifest

BLOCKS_SHOWN = 20
EVENTS_WINDOW_BLOCKS = 2_000
"""How far back the chain page and the cycles chart read the vault's events."""


def chain_head(rpc: Rpc | None) -> int | None:
    if rpc is None:
        return None
    try:
        return rpc.block_number()
    except ChainError:
        return None


@dataclass(frozen=True, slots=True)
class Cycle:
    number: int
    block: int
    instructions: int
    gross: dict[str, int]
    net: dict[str, int]

    def saved(self, currency: str) -> int:
        return self.gross.get(currency, 0) - self.net.get(currency, 0)


def cycles(logs: list[Log]) -> list[Cycle]:
    found = []
    for log in logs:
        if log.name != "CycleSettled":
            continue
        codes = list(log.args["currencies"])
        found.append(
            Cycle(
                number=int(log.args["cycle"]),
                block=log.block,
                instructions=int(log.args["instructions"]),
                gross=dict(zip(codes, map(int, log.args["gross"]), strict=True)),
                net=dict(zip(codes, map(int, log.args["net"]), strict=True)),
            )
        )
    return found


@dataclass(frozen=True, slots=True)
class Block:
    number: int
    hash: str
    parent_hash: str
    timestamp: dt.datetime
    transactions: int
    gas_used: int


@dataclass(slots=True)
class ChainView:
    head: int | None
    blocks: list[Block]
    events: list[Log]
    error: str = ""


def vault_logs(rpc: Rpc, manifest: Manifest, head: int, window: int) -> list[Log]:
    first = max(manifest.deployment_block, head - window + 1)
    raw = rpc.logs([manifest.vault], first, head, window)
    return sorted((log for log in map(decode_log, raw) if log is not None), key=lambda log: log.position)


def chain_view(rpc: Rpc | None, manifest: Manifest, events_max: int = 100) -> ChainView:
    if rpc is None:
        return ChainView(None, [], [], "the node has no chain connection")
    try:
        head = rpc.block_number()
        numbers = range(head, max(-1, head - BLOCKS_SHOWN), -1)
        raw = rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
        blocks = [_block(b) for b in raw if b]
        events = vault_logs(rpc, manifest, head, EVENTS_WINDOW_BLOCKS)[-events_max:][::-1]
        return ChainView(head, blocks, events)
    except ChainError as exc:
        return ChainView(None, [], [], str(exc)[:300])


@dataclass(frozen=True, slots=True)
class Tx:
    hash: str
    sender: str
    to: str | None
    nonce: int
    gas_used: int | None
    ok: bool | None


@dataclass(slots=True)
class BlockView:
    block: Block | None
    transactions: list[Tx]
    events: list[Log]
    head: int | None = None
    error: str = ""


def block_view(rpc: Rpc | None, manifest: Manifest, number: int) -> BlockView:
    """One block: its header, its transactions with their outcome, and the vault's events in it."""
    if rpc is None:
        return BlockView(None, [], [], error="the node has no chain connection")
    try:
        head = rpc.block_number()
        raw = rpc.call("eth_getBlockByNumber", [hex(number), True])
        if raw is None:
            return BlockView(None, [], [], head, f"block {number} is not on the chain (its head is {head})")
        receipts = rpc.batch([("eth_getTransactionReceipt", [t["hash"]]) for t in raw["transactions"]])
        txs = [
            Tx(
                hash=t["hash"],
                sender=t["from"],
                to=t.get("to"),
                nonce=int(t["nonce"], 16),
                gas_used=int(r["gasUsed"], 16) if r else None,
                ok=(r["status"] == "0x1") if r else None,
            )
            for t, r in zip(raw["transactions"], receipts, strict=True)
        ]
        logs = rpc.logs([manifest.vault], number, number, 1)
        events = sorted((log for log in map(decode_log, logs) if log is not None), key=lambda log: log.position)
        return BlockView(_block(raw), txs, events, head)
    except ChainError as exc:
        return BlockView(None, [], [], error=str(exc)[:300])


def _block(b: dict[str, Any]) -> Block:
    return Block(
        number=int(b["number"], 16),
        hash=b["hash"],
        parent_hash=b["parentHash"],
        timestamp=dt.datetime.fromtimestamp(int(b["timestamp"], 16), dt.UTC),
        transactions=len(b["transactions"]),
        gas_used=int(b["gasUsed"], 16),
    )
