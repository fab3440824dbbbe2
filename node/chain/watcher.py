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
included. A reorganisation deeper than that is reported loudly and changes nothing final.

The sender's receipts are a second source: once one of the node's own escrow or resolve
transactions is deep, :meth:`Watcher.expect` checks that its events were read, and reads
again from its block if they were not (a node may answer ``eth_getLogs`` at its head before
it has indexed the block).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from eth_utils.crypto import keccak
from hexbytes import HexBytes
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, load_only
from web3 import Web3

from node import metrics
from node.faults import failpoint
from node.pipeline.base import RESOLVED_EVENTS
from node.store.db import Store, insert_rows
from node.store.models import ChainEvent, ChainTx, EscrowBatch, SeenBlock, Transfer
from node.transitions import WATCHED, Transitions, lock_for_update, transition
from settlement.chain._abi import decode
from settlement.eip712 import checksum_address, uetr_of
from settlement.errors import ChainError
from settlement.lifecycle import ReasonCode, ReviewState, TransferStatus, TxKind, TxStatus
from settlement.manifest import Manifest

log = logging.getLogger("corridor.watcher")
S = TransferStatus
ACTOR = "node:watcher"

_SIGNATURES = {
    "InstructionEscrowed": (
        "InstructionEscrowed(bytes32,address,bytes3,uint128)",
        ["bytes3", "uint128"],
        ["debtor"],
        ["sellCurrency", "sellAmount"],
    ),
    "InstructionSettled": (
        "InstructionSettled(bytes32,address,address,bytes3,uint128,uint128)",
        ["address", "bytes3", "uint128", "uint128"],
        ["liquidityProvider"],
        ["creditor", "buyCurrency", "buyAmount", "fee"],
    ),
    "InstructionRefunded": (
        "InstructionRefunded(bytes32,address,bytes3,uint128,address)",
        ["bytes3", "uint128", "address"],
        ["debtor"],
        ["sellCurrency", "amount", "by"],
    ),
}
_BY_TOPIC = {
    keccak(text=sig): (name, types, indexed, names) for name, (sig, types, indexed, names) in _SIGNATURES.items()
}
TOPICS = ["0x" + t.hex() for t in _BY_TOPIC]


@dataclass(frozen=True, slots=True)
class WatcherSettings:
    confirmations: int = 3
    range_blocks_max: int = 1_000
    """Blocks per eth_getLogs call."""
    window_blocks: int = 256
    """Recent block hashes kept to find a fork; a deeper reorganisation is reported, not followed."""

    def __post_init__(self) -> None:
        if self.confirmations < 1 or self.window_blocks < self.confirmations:
            raise ValueError("confirmations must be at least 1 and at most window_blocks")


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    transfer_id: str
    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str
    data: dict[str, Any]


def decode_log(entry: Any) -> Event | None:
    """One of the vault's transfer events, from a log as web3 or the raw JSON-RPC gives it."""
    topics = [_bytes(t) for t in entry["topics"]]
    found = _BY_TOPIC.get(topics[0]) if topics else None
    if found is None:
        return None
    name, types, indexed, names = found
    data: dict[str, Any] = {}
    for key, topic in zip(indexed, topics[2:], strict=True):
        data[key] = checksum_address(topic[12:])
    for key, typ, value in zip(names, types, decode(types, _bytes(entry["data"])), strict=True):
        data[key] = (
            checksum_address(value) if typ == "address" else value.decode() if isinstance(value, bytes) else value
        )
    return Event(
        name=name,
        transfer_id=uetr_of(topics[1]),
        tx_hash=_hex(entry["transactionHash"]),
        log_index=_int(entry["logIndex"]),
        block_number=_int(entry["blockNumber"]),
        block_hash=_hex(entry["blockHash"]),
        data=data,
    )


class _Ref(NamedTuple):
    tx_hash: str
    block_number: int
    log_index: int


def _int(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) else int(value)


class Watcher:
    def __init__(self, store: Store, w3: Web3, manifest: Manifest, settings: WatcherSettings | None = None) -> None:
        self.store = store
        self.w3 = w3
        self.manifest = manifest
        self.settings = settings or WatcherSettings()
        self.head = 0
        """The chain's head at the last tick (0 before the first)."""

    def tick(self) -> int:
        """Read what is new (one bounded range), apply it, mark what is deep enough final; return the head."""
        settings = self.settings
        head = int(self.w3.eth.block_number)
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
        if start > end:
            with self.store.transaction() as session:
                self._finalize(session, head)
            return head
        numbers = sorted(set(range(max(start, head - settings.window_blocks + 1), end + 1)) | {end})
        headers = {n: self.w3.eth.get_block(n) for n in numbers}
        if tip is not None and start in headers and _hex(headers[start]["parentHash"]) != tip.hash:
            self._rollback()
            return head
        for n in numbers[1:]:
            if n - 1 in headers and _hex(headers[n]["parentHash"]) != _hex(headers[n - 1]["hash"]):
                return head  # the chain moved while we read: read again next tick
        # A raw call: web3's formatting of hundreds of logs a block cost more than applying them.
        answer = self.w3.provider.make_request(
            "eth_getLogs",  # type: ignore[arg-type]
            [{"address": self.manifest.vault, "fromBlock": hex(start), "toBlock": hex(end), "topics": [TOPICS]}],
        )
        if "error" in answer:
            raise ChainError(f"eth_getLogs {start}..{end} failed: {answer['error']}")
        events = [e for e in (decode_log(entry) for entry in answer["result"]) if e is not None]
        for e in events:
            if e.block_number in headers and e.block_hash != _hex(headers[e.block_number]["hash"]):
                return head  # logs from another fork than the headers: read again next tick
        with self.store.transaction() as session:
            self._apply(session, events)
            for n, header in headers.items():
                session.merge(SeenBlock(number=n, hash=_hex(header["hash"]), parent_hash=_hex(header["parentHash"])))
            session.execute(delete(SeenBlock).where(SeenBlock.number < end - settings.window_blocks))
            self._finalize(session, head)
        metrics.WATCHER_LAG.set(head - end)
        return head

    def expect(self, confirmed: Sequence[tuple[str, int, str]]) -> None:
        """Check that the events of this node's own transactions ``confirmed`` (hash, block, kind:
        deep and successful, so an escrow or a resolve emitted the vault's events) were read; if
        one's are missing, read again from its block.

        A node may answer ``eth_getLogs`` for its newest block before it has indexed that block's
        logs (reported of geth and Erigon). Read from the checkpoint onwards, such a miss would
        never be read again, and the transfers of that transaction would wait for good.
        """
        mined = [(tx_hash, block) for tx_hash, block, kind in confirmed if kind in (TxKind.ESCROW, TxKind.RESOLVE)]
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
        block = self.w3.eth.get_block(number)
        return None if block is None else _hex(block["hash"])

    # ------------------------------------------------------------------ applying

    def _apply(self, session: Session, events: Sequence[Event]) -> None:
        if not events:
            return
        lo, hi = events[0].block_number, events[-1].block_number
        seen = {
            (tx_hash, log_index)
            for tx_hash, log_index in session.execute(
                select(ChainEvent.tx_hash, ChainEvent.log_index).where(ChainEvent.block_number.between(lo, hi))
            )
        }
        rows = lock_for_update(session, sorted({e.transfer_id for e in events}), WATCHED)
        closing: set[int] = set()
        recorded: list[dict[str, Any]] = []
        changes = Transitions(session)
        for e in events:
            if (e.tx_hash, e.log_index) in seen:
                continue
            seen.add((e.tx_hash, e.log_index))
            t = rows.get(e.transfer_id)
            recorded.append(
                {
                    "name": e.name,
                    "transfer_id": e.transfer_id if t else None,
                    "tx_hash": e.tx_hash,
                    "log_index": e.log_index,
                    "block_number": e.block_number,
                    "block_hash": e.block_hash,
                    "data": {k: str(v) for k, v in e.data.items()},
                }
            )
            if t is None:
                continue  # not a transfer of this node (another relayer's, or a test's)
            status = S(t.status)
            if e.name == "InstructionEscrowed" and status is S.RECEIVED:
                if t.review == ReviewState.PENDING:
                    changes.add(
                        t,
                        S.ESCROWED,
                        f"escrowed in block {e.block_number}; {t.review_reason}",
                        e,
                        code=t.review_code,
                        actor=ACTOR,
                    )
                else:
                    changes.add(
                        t, S.ESCROWED, f"escrowed in block {e.block_number}", e, code=ReasonCode.ESCROWED, actor=ACTOR
                    )
            elif e.name == "InstructionSettled" and status is S.ESCROWED:
                why = f"settled in block {e.block_number}: FINAL after {self.settings.confirmations} confirmations"
                changes.add(
                    t,
                    S.SETTLED,
                    why,
                    e,
                    code=ReasonCode.SETTLED,
                    actor=ACTOR,
                    values={"buy_amount": int(e.data["buyAmount"]), "fee": int(e.data["fee"])},
                )
            elif e.name == "InstructionRefunded" and status is S.ESCROWED:
                t.status_reason = (
                    f"refunded in block {e.block_number}: REFUNDED after {self.settings.confirmations} confirmations"
                )
            else:
                log.warning("event %s for transfer %s in status %s: recorded, no change", e.name, t.id, t.status)
            if e.name in RESOLVED_EVENTS and t.batch_id is not None:
                closing.add(t.batch_id)
        insert_rows(session, ChainEvent, recorded)
        changes.write()
        session.flush()
        if any(e.transfer_id in rows for e in events):
            failpoint("before_watcher_commit")  # this node's transfers changed; the commit has not happened
        for batch_id in closing:
            batch = session.get(EscrowBatch, batch_id)
            if batch is None:
                continue
            resolved = session.scalars(
                select(ChainEvent.transfer_id).where(
                    ChainEvent.transfer_id.in_(batch.transfer_ids), ChainEvent.name.in_(RESOLVED_EVENTS)
                )
            ).all()
            if len(set(resolved)) == len(batch.transfer_ids):
                batch.open = False  # every position is settled or refunded: the slot is free

    def _finalize(self, session: Session, head: int) -> None:
        cutoff = head - self.settings.confirmations + 1
        k = self.settings.confirmations
        for target, status, name in (
            (S.FINAL, S.SETTLED, "InstructionSettled"),
            (S.REFUNDED, S.ESCROWED, "InstructionRefunded"),
        ):
            # The event's columns, not the entity: its JSON data is not needed here.
            rows = session.execute(
                select(Transfer, ChainEvent.tx_hash, ChainEvent.block_number, ChainEvent.log_index)
                .options(load_only(*WATCHED, raiseload=True))
                .join(ChainEvent, ChainEvent.transfer_id == Transfer.id)
                .where(Transfer.status == status.value, ChainEvent.name == name, ChainEvent.block_number <= cutoff)
                .with_for_update(of=Transfer)
            ).all()
            with Transitions(session) as changes:
                for t, tx_hash, block_number, log_index in rows:
                    ref = _Ref(tx_hash, block_number, log_index)
                    what, code = (
                        ("settled", ReasonCode.FINAL) if target is S.FINAL else ("refunded", ReasonCode.REFUNDED)
                    )
                    if target is S.REFUNDED and t.review == ReviewState.REJECTED:
                        what = f"rejected by the operator's review ({t.review_reason}); refunded"
                        code = ReasonCode.REVIEW_REJECTED
                    changes.add(
                        t,
                        target,
                        f"{what} in block {block_number}, {head - block_number + 1} confirmations (needs {k})",
                        ref,
                        code=code,
                        actor=ACTOR,
                    )

    # ------------------------------------------------------------------ reorganisations

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
                self._step_back(session, t, fork)
        log.warning(
            "reorganisation from block %s: %s events undone, %s transfers stepped back",
            fork,
            len(undone),
            len(affected),
        )

    def _step_back(self, session: Session, t: Transfer, fork: int) -> None:
        left = set(session.scalars(select(ChainEvent.name).where(ChainEvent.transfer_id == t.id)))
        if S(t.status).terminal:
            if t.status != S.REJECTED.value:
                log.critical("reorganisation at block %s undid events of %s transfer %s", fork, t.status, t.id)
            return
        target = (
            S.SETTLED if "InstructionSettled" in left else S.ESCROWED if "InstructionEscrowed" in left else S.RECEIVED
        )
        order = [S.RECEIVED, S.ESCROWED, S.SETTLED]
        while order.index(S(t.status)) > order.index(target):
            back = order[order.index(S(t.status)) - 1]
            transition(
                session,
                t,
                back,
                f"a chain reorganisation from block {fork} undid it; it is being sent again",
                code=ReasonCode.REORG,
                actor=ACTOR,
            )
        if "InstructionSettled" not in left:
            t.buy_amount = t.fee = None
        if not left & set(RESOLVED_EVENTS) and t.batch_id is not None:
            batch = session.get(EscrowBatch, t.batch_id)
            if batch is not None:
                batch.open = True


def _bytes(value: Any) -> bytes:
    """Bytes from JSON-RPC's hex string (parsed directly: a block's logs are thousands) or from web3's bytes."""
    if isinstance(value, str):
        return bytes.fromhex(value[2:] if value[:2] in ("0x", "0X") else value)
    return bytes(HexBytes(value))


def _hex(value: Any) -> str:
    return "0x" + _bytes(value).hex()
