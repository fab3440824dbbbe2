"""The operator's switches, carried to the chain: a frozen bank is frozen in the vault too
(``setFrozen``), a paused network pauses the vault (``setPaused``).

The admin API changes the store at once (the node refuses the bank's transfers from that
moment); the leader's worker then sends the vault transaction with the operator's key, and
records the state the vault holds once that transaction is confirmed. A transaction that
fails is logged and tried again on a later round while the store and the chain still differ.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from node.chain.sender import LIVE, TxSender
from node.ops import audit_log
from node.store.db import Store
from node.store.models import Bank, ChainTx, NetworkState
from settlement.chain.vault import Vault
from settlement.lifecycle import TxKind, TxStatus

log = logging.getLogger("corridor.switches")
ACTOR = "node:operator-key"


class Switches:
    def __init__(self, store: Store, vault: Vault, operator: TxSender) -> None:
        self.store, self.vault, self.operator = store, vault, operator

    def sync(self) -> int:
        """Follow the switch transactions in flight, and send those the store asks for; returns how many were sent."""
        with self.store.transaction(write=False) as session:
            differs = or_(Bank.frozen != Bank.frozen_on_chain, Bank.switch_tx_id.is_not(None))
            banks = list(session.scalars(select(Bank.id).where(differs)))
            state = session.get(NetworkState, 1)
            network = state is not None and (state.paused != state.paused_on_chain or state.switch_tx_id is not None)
        if not banks and not network:
            return 0
        wanted: list[tuple[str, Any, bytes, dict[str, Any]]] = []
        with self.store.transaction() as session:
            for bank_id in banks:
                bank = session.get(Bank, bank_id)
                assert bank is not None
                if bank.switch_tx_id is not None:
                    self._settled(session, bank.switch_tx_id, bank)
                if bank.switch_tx_id is None and bank.frozen != bank.frozen_on_chain:
                    data = self._call("setFrozen", bank.address, bank.frozen)
                    wanted.append(("bank", bank_id, data, {"bank_id": bank_id, "frozen": bank.frozen}))
            if network:
                state = session.get(NetworkState, 1)
                assert state is not None
                if state.switch_tx_id is not None:
                    self._settled(session, state.switch_tx_id, state)
                if state.switch_tx_id is None and state.paused != state.paused_on_chain:
                    wanted.append(("network", 1, self._call("setPaused", state.paused), {"paused": state.paused}))
        sent = 0
        for what, key, data, payload in wanted:
            sent += self._send(what, key, data, payload)
        return sent

    def _settled(self, session: Session, tx_id: int, row: Bank | NetworkState) -> None:
        """Record the outcome of the row's switch transaction once it has one."""
        tx = session.get(ChainTx, tx_id)
        if tx is None or tx.status in LIVE:
            return
        if tx.status == TxStatus.CONFIRMED:
            if isinstance(row, Bank):
                row.frozen_on_chain = bool(tx.payload["frozen"])
            else:
                row.paused_on_chain = bool(tx.payload["paused"])
            audit_log.append(
                session,
                ACTOR,
                "chain.switch_confirmed",
                _subject(row),
                {"tx_hash": tx.tx_hash, "block": tx.block_number, **tx.payload},
            )
        else:
            log.warning("switch transaction %s %s: %s", tx.tx_hash, tx.status, tx.error)
        row.switch_tx_id = None

    def _call(self, function: str, *args: Any) -> bytes:
        encoded: str = self.vault.contract.encode_abi(function, args=list(args))
        return bytes.fromhex(encoded[2:])

    def _send(self, what: str, key: int, data: bytes, payload: dict[str, Any]) -> int:
        call = {"from": self.operator.address, "to": self.vault.manifest.vault, "data": "0x" + data.hex()}
        try:
            gas = int(self.vault.w3.eth.estimate_gas(call)) * 5 // 4  # type: ignore[arg-type]
        except Exception as exc:
            log.warning("the vault would refuse the operator's %s switch %s: %s", what, payload, exc)
            return 0
        fees = self.operator.fees()
        try:
            with self.store.transaction() as session:
                row = session.get(Bank, key) if what == "bank" else session.get(NetworkState, key)
                if row is None or row.switch_tx_id is not None:
                    return 0
                tx = self.operator.prepare(session, TxKind.SWITCH, self.vault.manifest.vault, data, gas, payload, fees)
                session.flush()
                row.switch_tx_id = tx.id
                audit_log.append(session, ACTOR, "chain.switch_sent", _subject(row), {"tx_hash": tx.tx_hash, **payload})
                tx_id = tx.id
        except BaseException:
            self.operator.forget_nonce()
            raise
        self.operator.broadcast(tx_id)
        return 1


def _subject(row: Bank | NetworkState) -> str:
    return f"bank:{row.bic}" if isinstance(row, Bank) else "network"
