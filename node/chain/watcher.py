"""The watcher: turns the vault's events into transfer states, and notices reorganisations.

It reads the vault's logs in bounded block ranges from a checkpoint kept in the store (the
newest row of ``seen_blocks``), and applies each event once: (transaction hash, log index)
is unique in ``chain_events``. It keeps the hashes of recent blocks; when the chain's block
at a height no longer has the hash it saw (or a new block's parent is not the block it saw)
it walks back to the fork, deletes the events of the abandoned blocks and steps the affected
transfers back (SETTLED → ESCROWED → RECEIVED). Their transactions are sent again by the
sender, so they come back by themselves.

ESCROWED and SETTLED are written when the event is in the chain the node follows; FINAL (and
REFUNDED) when the settlement (refund) is ``confirmations`` blocks deep, its own block
included, or, on a chain with a finality gadget, at or below its finalized block
(:mod:`node.chain.finality`). A reorganisation deeper than that is reported loudly and
changes nothing final.

The sender's receipts are a second source: once one of the node's own escrow or resolve
transactions is deep, :meth:`Watcher.expect` checks that its events were read, and reads
again from its block if they were not (a node may answer ``eth_getLogs`` at its head before
it has indexed the block).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update

from node import metrics
from node.chain.apply import Event, apply_events, finalize, step_back
from node.chain.finality import Finality, Rule
from node.store.db import Store
from node.store.models import ChainEvent, ChainTx, SeenBlock
from node.transitions import lock_for_update
from settlement.chain.events import as_hex, decode_log, topic
from settlement.chain.rpc import Rpc
from settlement.eip712 import uetr_of
from settlement.lifecycle import TxKind, TxStatus
from settlement.manifest import Manifest

log = logging.getLogger("corridor.watcher")

WATCHED_EVENTS = ("InstructionEscrowed", "InstructionSettled", "InstructionRefunded", "InstructionNetted")
TOPICS = [topic(name) for name in WATCHED_EVENTS]


@dataclass(frozen=True, slots=True)
class WatcherSettings:
    confirmations: int = 3
    finality: Rule = "confirmations"
    """``confirmations``: FINAL that many blocks deep; ``finalized``: at or below the chain's finalized block."""
    range_blocks_max: int = 1_000
    """Blocks per eth_getLogs call."""
    window_blocks: int = 256
    """Recent block hashes kept to find a fork; a deeper reorganisation is reported, not followed."""

    def __post_init__(self) -> None:
        if self.confirmations < 1 or self.window_blocks < self.confirmations:
            raise ValueError("confirmations must be at least 1 and at most window_blocks")

    @property
    def final(self) -> Finality:
        return Finality(self.finality, self.confirmations)


def event_of(entry: Any) -> Event | None:
    """One of the vault's transfer events, from a log as web3 or the raw JSON-RPC gives it."""
    found = decode_log(entry)
    if found is None or found.name not in WATCHED_EVENTS:
        return None
    return Event(
        name=found.name,
        transfer_id=uetr_of(found.args["id"]),
        tx_hash=found.tx_hash,
        log_index=found.index,
        block_number=found.block,
        block_hash=found.block_hash,
        data={k: v for k, v in found.args.items() if k != "id"},
    )


class Watcher:
    def __init__(self, store: Store, rpc: Rpc, manifest: Manifest, settings: WatcherSettings | None = None) -> None:
        self.store = store
        self.rpc = rpc
        self.manifest = manifest
        self.settings = settings or WatcherSettings()
        self.head = 0
        """The chain's head at the last tick (0 before the first)."""

    def new_term(self) -> None:
        """A new term as the leader: the checkpoint is read from the store every tick; the head is forgotten."""
        self.head = 0

    def tick(self) -> int:
        """Read what is new (one bounded range), apply it, mark what is deep enough final; return the head."""
        settings = self.settings
        head = self.rpc.block_number()
        self.head = head
        with self.store.transaction(write=False) as session:
            tip = session.scalars(select(SeenBlock).order_by(SeenBlock.number.desc()).limit(1)).first()
        if tip is not None:
            if tip.number > head or self._hash(tip.number) != tip.hash:
                self._rollback()
                return head
            start = tip.number + 1
        else:
            start = self.manifest.deployment_block
        end = min(head, start + settings.range_blocks_max - 1)
        final = settings.final
        if start > end:
            cutoff = final.cutoff(self.rpc, head)
            with self.store.transaction() as session:
                finalize(session, head, cutoff, final)
            return head
        numbers = sorted(set(range(max(start, head - settings.window_blocks + 1), end + 1)) | {end})
        headers = dict(zip(numbers, self.rpc.blocks(numbers), strict=True))
        if any(header is None for header in headers.values()):
            return head  # the node named a head it does not serve yet (a lagging replica): read again next tick
        if tip is not None and start in headers and as_hex(headers[start]["parentHash"]) != tip.hash:
            self._rollback()
            return head
        for n in numbers[1:]:
            if n - 1 in headers and as_hex(headers[n]["parentHash"]) != as_hex(headers[n - 1]["hash"]):
                return head  # the chain moved while we read: read again next tick
        found = self.rpc.call(
            "eth_getLogs",
            [{"address": self.manifest.vault, "fromBlock": hex(start), "toBlock": hex(end), "topics": [TOPICS]}],
        )
        events = [e for e in map(event_of, found) if e is not None]
        for e in events:
            if e.block_number in headers and e.block_hash != as_hex(headers[e.block_number]["hash"]):
                return head  # logs from another fork than the headers: read again next tick
        cutoff = final.cutoff(self.rpc, head)
        with self.store.transaction() as session:
            apply_events(session, events, final)
            for n, header in headers.items():
                session.merge(
                    SeenBlock(number=n, hash=as_hex(header["hash"]), parent_hash=as_hex(header["parentHash"]))
                )
            session.execute(delete(SeenBlock).where(SeenBlock.number < end - settings.window_blocks))
            finalize(session, head, cutoff, final)
        metrics.WATCHER_LAG.set(head - end)
        return head

    def expect(self, confirmed: Sequence[tuple[str, int, str]]) -> None:
        """Check that the events of this node's own transactions ``confirmed`` (hash, block, kind:
        deep and successful, so an escrow, a resolve or a cycle emitted the vault's events) were read; if
        one's are missing, read again from its block.

        A node may answer ``eth_getLogs`` for its newest block before it has indexed that block's
        logs (reported of geth and Erigon). Read from the checkpoint onwards, such a miss would
        never be read again, and the transfers of that transaction would wait for good.
        """
        settling = (TxKind.ESCROW, TxKind.RESOLVE, TxKind.CYCLE)
        mined = [(tx_hash, block) for tx_hash, block, kind in confirmed if kind in settling]
        if not mined:
            return
        with self.store.transaction(write=False) as session:
            tip = session.scalar(select(func.max(SeenBlock.number)))
            hashes = {tx_hash for tx_hash, block in mined if tip is not None and block <= tip}
            recorded = set(session.scalars(select(ChainEvent.tx_hash).where(ChainEvent.tx_hash.in_(hashes)).distinct()))
        missed = sorted((block, tx_hash) for tx_hash, block in mined if tx_hash in hashes and tx_hash not in recorded)
        if not missed:
            return
        fork = missed[0][0]
        metrics.LOGS_MISSED.inc(len(missed))
        log.warning(
            "the logs read held no event of %s mined transactions of this node (first %s in block %s): "
            "reading again from block %s",
            len(missed),
            missed[0][1],
            fork,
            fork,
        )
        with self.store.transaction() as session:
            session.execute(delete(SeenBlock).where(SeenBlock.number >= fork))

    def _hash(self, number: int) -> str | None:
        block = self.rpc.call("eth_getBlockByNumber", [hex(number), False])
        return None if block is None else as_hex(block["hash"])

    def _rollback(self) -> None:
        with self.store.transaction(write=False) as session:
            seen = list(session.scalars(select(SeenBlock).order_by(SeenBlock.number.desc())))
        fork: int | None = None
        for block in seen:
            if self._hash(block.number) == block.hash:
                break
            fork = block.number
        if fork is None:
            return
        if seen and fork == seen[-1].number:
            log.critical(
                "reorganisation deeper than the %s blocks kept: following from block %s",
                self.settings.window_blocks,
                fork,
            )
        metrics.REORGS.inc()
        with self.store.transaction() as session:
            undone = list(session.scalars(select(ChainEvent).where(ChainEvent.block_number >= fork)))
            affected = sorted({e.transfer_id for e in undone if e.transfer_id})
            session.execute(delete(ChainEvent).where(ChainEvent.block_number >= fork))
            session.execute(delete(SeenBlock).where(SeenBlock.number >= fork))
            session.execute(
                update(ChainTx)
                .where(ChainTx.block_number >= fork, ChainTx.status.in_((TxStatus.MINED, TxStatus.CONFIRMED)))
                .values(status=TxStatus.SENT, block_number=None, sent_at=None)
            )
            session.flush()
            for t in lock_for_update(session, affected).values():
                step_back(session, t, fork)
        log.warning(
            "reorganisation from block %s: %s events undone, %s transfers stepped back",
            fork,
            len(undone),
            len(affected),
        )
