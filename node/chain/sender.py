"""The relayer's transaction sender: sign locally, never lose or repeat a transaction.

Every transaction is signed and written to the store (``chain_txs``, status ``signed``)
before it is broadcast, in the same database transaction that assigns the instructions to
it. After a crash the row is still there: it is broadcast again (a node that already has it
answers "already known") and its fate is read back by hash. So an instruction is put in at
most one transaction, which carries one nonce; replacements re-sign that nonce with higher
fees, so at most one of them is mined. The vault's nonce bitmap and slot commitments would
refuse a second escrow or settlement anyway: the store makes sure the node never tries.

Nonces are counted here, under a lock, from the larger of the chain's pending count and the
store's highest nonce. A transaction the node no longer holds after ``lookup_after_s`` is
sent again as it is. A transaction not mined after ``stuck_after_s`` is re-signed with
fees raised by at least 12.5% (the replacement rule of geth and Besu is 10%), up to
``bumps_max`` times and never above ``fee_cap_wei``.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_typing import ChecksumAddress
from hexbytes import HexBytes
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError, Web3RPCError

from node import metrics
from node.faults import failpoint
from node.store.db import Store
from node.store.models import ChainTx
from settlement.chain import RPC_TIMEOUT_S, decode_revert
from settlement.chain.rpc import Rpc
from settlement.lifecycle import LIVE_TX, TxStatus

log = logging.getLogger("corridor.sender")

LIVE = LIVE_TX
_KNOWN = ("already known", "nonce too low", "already imported", "known transaction", "already in the pool")
_FEE_FIELDS = ("maxFeePerGas", "maxPriorityFeePerGas", "gasPrice")
BUMP_NUMERATOR, BUMP_DENOMINATOR = 9, 8  # +12.5%


@dataclass(frozen=True, slots=True)
class SenderSettings:
    confirmations: int = 3
    stuck_after_s: float = 20.0
    lookup_after_s: float = 3.0
    """A transaction sent this long ago and not mined is looked up; one the node no longer holds
    is sent again at once (anvil drops a transaction that did not fit a full block)."""
    bumps_max: int = 10
    fee_cap_wei: int = 1_000 * 10**9
    priority_fee_wei: int = 10**9


def bumped(fees: dict[str, int], floor: dict[str, int], cap_wei: int) -> dict[str, int]:
    """Fees at least 12.5% above ``fees`` (and no lower than today's ``floor``), capped."""
    out: dict[str, int] = {}
    for name, value in fees.items():
        raised = -(-value * BUMP_NUMERATOR // BUMP_DENOMINATOR)
        out[name] = min(max(raised, floor.get(name, 0)), cap_wei)
    if "maxPriorityFeePerGas" in out:
        out["maxPriorityFeePerGas"] = min(out["maxPriorityFeePerGas"], out["maxFeePerGas"])
    return out


class TxSender:
    def __init__(
        self,
        w3: Web3,
        private_key: str,
        store: Store,
        settings: SenderSettings,
        clock: Callable[[], float] = time.time,
        chain_id: int | None = None,
        rpc: Rpc | None = None,
        gate: Callable[[], bool] | None = None,
    ) -> None:
        self.w3 = w3
        self.rpc = rpc or Rpc(str(getattr(w3.provider, "endpoint_uri", "")), RPC_TIMEOUT_S)
        """Raw reads (receipts, lookups, simulations): answers as the node sends them, unformatted."""
        self.store = store
        self.settings = settings
        self.clock = clock
        self.gate = gate
        """Asked before every broadcast (the leader's term still holds); None: always send."""
        self._account = Account.from_key(private_key)
        self.address: ChecksumAddress = self._account.address
        self.chain_id = chain_id if chain_id is not None else int(w3.eth.chain_id)
        self._lock = threading.Lock()
        self._next_nonce: int | None = None
        self._sent: dict[int, dt.datetime] = {}
        """Broadcast and answered, not yet recorded: :meth:`poll` records them in its transaction."""
        self.confirmed: list[tuple[str, int, str]] = []
        """(hash, block, kind) of the transactions the last :meth:`poll` found ``confirmations`` deep and
        successful: an escrow or resolve emitted the vault's events, which the watcher must have (see
        :meth:`node.chain.watcher.Watcher.expect`)."""

    # ------------------------------------------------------------------ signing

    def fees(self) -> dict[str, int]:
        """Fees for a new transaction: EIP-1559 where the chain has a base fee, else a gas price."""
        base = self.w3.eth.get_block("latest").get("baseFeePerGas")
        if base is None:
            return {"gasPrice": min(max(int(self.w3.eth.gas_price), 1), self.settings.fee_cap_wei)}
        tip = self.settings.priority_fee_wei
        return {"maxFeePerGas": min(2 * int(base) + tip, self.settings.fee_cap_wei), "maxPriorityFeePerGas": tip}

    def prepare(
        self, session: Session, kind: str, to: str, data: bytes, gas: int, payload: dict[str, Any], fees: dict[str, int]
    ) -> ChainTx:
        """Sign a transaction with the next nonce and add it to ``session`` (status ``signed``).

        The caller commits the session, then calls :meth:`broadcast`. If the session rolls
        back instead, the caller must call :meth:`forget_nonce`.
        """
        with self._lock:
            if self._next_nonce is None:
                self._next_nonce = self._sync_nonce(session)
            request: dict[str, Any] = {
                "to": Web3.to_checksum_address(to),
                "data": "0x" + data.hex(),
                "gas": gas,
                "nonce": self._next_nonce,
                "chainId": self.chain_id,
                "value": 0,
                **fees,
            }
            raw, tx_hash = self._sign(request)
            now = dt.datetime.now(dt.UTC)
            tx = ChainTx(
                kind=kind,
                sender=self.address,
                nonce=self._next_nonce,
                status=TxStatus.SIGNED,
                tx_hash=tx_hash,
                hashes=[tx_hash],
                raw=raw,
                request=request,
                payload=payload,
                bumps=0,
                error="",
                created_at=now,
                updated_at=now,
            )
            session.add(tx)
            metrics.TXS_SENT.labels(kind).inc()
            self._next_nonce += 1
            return tx

    def forget_nonce(self) -> None:
        """Re-read the nonce next time (after a rollback dropped a prepared transaction)."""
        with self._lock:
            self._next_nonce = None

    def new_term(self) -> None:
        """A new term as the leader: another worker may have signed with this key meanwhile, so the
        nonce is read again from the chain and the store, and nothing of the old term is kept."""
        with self._lock:
            self._next_nonce = None
            self._sent = {}
        self.confirmed = []

    def _sync_nonce(self, session: Session) -> int:
        chain = int(self.w3.eth.get_transaction_count(self.address, "pending"))
        stored = session.scalar(
            select(func.max(ChainTx.nonce)).where(ChainTx.sender == self.address, ChainTx.status != TxStatus.DROPPED)
        )
        return max(chain, -1 if stored is None else stored + 1)

    def _sign(self, request: dict[str, Any]) -> tuple[str, str]:
        signed = self._account.sign_transaction(request)
        return "0x" + bytes(signed.raw_transaction).hex(), "0x" + bytes(signed.hash).hex()

    # ------------------------------------------------------------------ broadcasting

    def broadcast(self, tx_id: int, resign: bool = True) -> None:
        """Send a stored transaction's latest signed form, then record that it was sent.

        An answer lost on the way (timeout, crash) is harmless: the row keeps every hash and
        :meth:`poll` looks them up. The row becomes ``sent`` at the next :meth:`poll`. Nothing is
        sent once the gate says this worker's term has ended. A transaction never sent whose nonce
        the chain has already used ("nonce too low": the counter was stale, or another signer of
        this key used it) is signed again with the next free nonce and sent (once per call).
        """
        if self.gate is not None and not self.gate():
            log.warning("tx %s not broadcast: this worker's term as the leader has ended", tx_id)
            return
        with self.store.transaction(write=False) as session:
            tx = session.get(ChainTx, tx_id)
            assert tx is not None
            raw, fresh = tx.raw, tx.status == TxStatus.SIGNED and tx.sent_at is None and tx.bumps == 0
        try:
            self.w3.eth.send_raw_transaction(HexBytes(raw))
        except Web3RPCError as exc:
            message = str(exc)
            if resign and fresh and "nonce too low" in message.lower() and self._resign(tx_id):
                self.broadcast(tx_id, resign=False)
                return
            if not any(known in message.lower() for known in _KNOWN):
                log.warning("broadcast of tx %s failed, will retry: %s", tx_id, message[:300])
                with self.store.transaction() as session:
                    row = session.get(ChainTx, tx_id)
                    if row is not None:
                        row.error = message[:500]
                return
        except (OSError, ValueError) as exc:  # connection refused, timeouts (requests' errors are OSErrors)
            log.warning("broadcast of tx %s got no answer, will look it up: %s", tx_id, exc)
            return
        failpoint("after_send")
        # Recorded by the next poll rather than in a write transaction of its own: a round sends
        # dozens, which would each wait for the store's writer. Lost in a crash, the mark only
        # costs a second broadcast, which the node answers with "already known".
        with self._lock:
            self._sent[tx_id] = dt.datetime.now(dt.UTC)

    def _resign(self, tx_id: int) -> bool:
        """Give a never-sent transaction whose nonce is taken the next free nonce (True: re-signed).

        Not when one of its hashes is mined or known to the node: then the nonce went to it."""
        with self.store.transaction(write=False) as session:
            tx = session.get(ChainTx, tx_id)
            assert tx is not None
            hashes = list(tx.hashes)
        if self._receipt(hashes) is not None or any(self._known(h) for h in hashes):
            return False
        with self.store.transaction() as session:
            tx = session.get(ChainTx, tx_id)
            if tx is None or tx.status != TxStatus.SIGNED or tx.sent_at is not None or tx.bumps != 0:
                return False
            with self._lock:
                self._next_nonce = self._sync_nonce(session)
                old, nonce = tx.nonce, self._next_nonce
                request = {**tx.request, "nonce": nonce}
                tx.raw, tx.tx_hash = self._sign(request)
                tx.nonce, tx.request, tx.hashes = nonce, request, [tx.tx_hash]
                tx.updated_at = dt.datetime.now(dt.UTC)
                self._next_nonce += 1
        metrics.TXS_RESIGNED.inc()
        log.warning("tx %s: nonce %s was already used on chain; signed again with nonce %s", tx_id, old, nonce)
        return True

    # ------------------------------------------------------------------ following

    def poll(self, head: int) -> list[ChainTx]:
        """Look up every live transaction; return those that ended badly (failed or dropped).

        Mined ones become ``confirmed`` after the configured confirmations; one whose block
        was reorganised away is sent again; one not mined in time is replaced with higher
        fees; one whose nonce went to a transaction this node does not know is ``dropped``.
        """
        to_send: list[int] = []
        ended: list[ChainTx] = []
        self.confirmed = []
        with self.store.transaction() as session:
            live = list(
                session.scalars(
                    select(ChainTx)
                    .where(ChainTx.sender == self.address, ChainTx.status.in_(LIVE))
                    .order_by(ChainTx.nonce)
                )
            )
            with self._lock:
                sent, self._sent = self._sent, {}
            for tx in live:
                at = sent.get(tx.id)
                if at is not None and tx.status in (TxStatus.SIGNED, TxStatus.SENT):
                    tx.status, tx.sent_at, tx.updated_at = TxStatus.SENT, at, at
            if not live:
                return []
            # The count as of a block ``confirmations`` deep, read before the receipts: a nonce used
            # there is in a block that no reorganisation shallower than that undoes, and that the
            # receipt lookups below will see if the transaction is ours. (Counted at the head, a
            # reorganisation between the count and the lookups made live transactions look dropped.)
            deep = max(0, head - self.settings.confirmations + 1)
            chain_nonce = int(self.w3.eth.get_transaction_count(self.address, deep))
            floor = functools.cache(self.fees)  # today's fees, read once a poll if a replacement needs them
            now = dt.datetime.now(dt.UTC)
            for tx in live:
                if tx.status == TxStatus.MINED and tx.block_number is not None:
                    if head - tx.block_number + 1 < self.settings.confirmations:
                        continue  # not deep enough yet; a reorganisation meanwhile is the watcher's to report
                receipt = self._receipt(tx.hashes)
                if receipt is not None:
                    if self._mined(tx, receipt, head, now):
                        ended.append(tx)
                    continue
                if tx.status == TxStatus.MINED:  # its block is no longer in the chain: send it again
                    tx.status, tx.block_number, tx.sent_at, tx.updated_at = TxStatus.SENT, None, None, now
                if tx.status == TxStatus.SIGNED or tx.sent_at is None:
                    to_send.append(tx.id)
                elif chain_nonce > tx.nonce:
                    tx.status, tx.updated_at = TxStatus.DROPPED, now
                    tx.error = f"nonce {tx.nonce} went to another transaction (another worker's, or not this node's)"
                    metrics.TXS_ENDED.labels(TxStatus.DROPPED.value).inc()
                    ended.append(tx)
                elif (now - tx.sent_at).total_seconds() > self.settings.lookup_after_s and not self._known(tx.tx_hash):
                    log.info("tx %s (nonce %s) is no longer known to the node: sent again", tx.id, tx.nonce)
                    to_send.append(tx.id)
                elif (now - tx.sent_at).total_seconds() > self.settings.stuck_after_s and self._replace(tx, now, floor):
                    to_send.append(tx.id)
        for tx_id in to_send:
            self.broadcast(tx_id)
        return ended

    def _mined(self, tx: ChainTx, receipt: dict[str, Any], head: int, now: dt.datetime) -> bool:
        """Record a transaction's receipt: confirmed once deep enough, or failed (True: it ended badly)."""
        block = int(receipt["blockNumber"], 16)
        tx.tx_hash, tx.block_number, tx.updated_at = str(receipt["transactionHash"]).lower(), block, now
        if int(receipt["status"], 16) == 0:
            tx.status, tx.error = TxStatus.FAILED, self._revert_reason(tx.request, block)
            metrics.TXS_ENDED.labels(TxStatus.FAILED.value).inc()
            return True
        if head - block + 1 >= self.settings.confirmations:
            tx.status = TxStatus.CONFIRMED
            self.confirmed.append((tx.tx_hash, block, tx.kind))
        else:
            tx.status = TxStatus.MINED
        return False

    def _replace(self, tx: ChainTx, now: dt.datetime, floor: Callable[[], dict[str, int]]) -> bool:
        """Re-sign a stuck transaction with fees at least 12.5% higher (True: send it), unless the
        bumps or the fee cap are used up (then it waits for an operator)."""
        if tx.bumps >= self.settings.bumps_max:
            tx.error = f"not mined after {tx.bumps} fee bumps: needs an operator"
            return False
        current = {k: int(v) for k, v in tx.request.items() if k in _FEE_FIELDS}
        fees = bumped(current, floor(), self.settings.fee_cap_wei)
        request = {**tx.request, **fees}
        if request == tx.request:
            tx.error = f"fees at the cap of {self.settings.fee_cap_wei} wei: needs an operator"
            return False
        tx.raw, tx.tx_hash = self._sign(request)
        tx.request, tx.hashes, tx.bumps = request, [*tx.hashes, tx.tx_hash], tx.bumps + 1
        tx.sent_at, tx.updated_at = None, now
        log.info("tx %s (nonce %s) stuck: replaced with fees %s", tx.id, tx.nonce, fees)
        return True

    def _known(self, tx_hash: str) -> bool:
        """Does the node hold the transaction (mined or pending)? Asked with a raw call: the answer
        carries the whole calldata, which web3 would format field by field."""
        return self.rpc.call("eth_getTransactionByHash", [tx_hash]) is not None

    def _receipt(self, hashes: list[str]) -> dict[str, Any] | None:
        """The receipt of whichever of ``hashes`` is mined, as the node sent it (hex strings).

        Read raw: a batch's receipt carries hundreds of logs, and the sender needs three fields of it.
        """
        for tx_hash in reversed(hashes):
            receipt = self.rpc.call("eth_getTransactionReceipt", [tx_hash])
            if receipt is not None and receipt.get("blockNumber") is not None:
                return dict(receipt)
        return None

    def _revert_reason(self, request: dict[str, Any], block: int) -> str:
        call = {"from": self.address, "to": request["to"], "data": request["data"]}
        try:
            self.w3.eth.call(call, block - 1)  # type: ignore[arg-type]
        except (ContractCustomError, ContractLogicError) as exc:
            data = getattr(exc, "data", None)
            decoded = decode_revert(data) if isinstance(data, str | bytes) and data else None
            return f"reverted: {decoded or exc}"
        except Exception as exc:  # the replay is a courtesy for the operator; the revert stands
            return f"reverted (replay failed: {type(exc).__name__})"
        return "reverted (the replay on the parent block succeeds: state changed within the block)"
