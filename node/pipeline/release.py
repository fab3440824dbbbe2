"""Release: the transfers of a transaction that failed or was dropped, given back to their stage."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select

from node.pipeline.base import ACTOR, S, Stage, log
from node.pipeline.refusals import named_in
from node.store.models import ChainEvent, ChainTx, EscrowBatch, Transfer
from node.transitions import lock_for_update, transition
from settlement.lifecycle import ReasonCode, TxKind


class ReleaseStage(Stage):
    def release(self, ended: Iterable[ChainTx]) -> None:
        """Give the transfers of a failed or dropped transaction back to their stage.

        A transfer the vault's revert names is rejected; the others go round again (and
        the simulation finds anything else wrong before a second transaction is signed).
        """
        ended = list(ended)
        if not ended:
            return
        with self.store.transaction() as session:
            for tx in ended:
                named = named_in(tx.error)
                if tx.kind == TxKind.ESCROW:
                    batch = session.scalar(select(EscrowBatch).where(EscrowBatch.escrow_tx_id == tx.id))
                    if batch is None:
                        continue
                    escrowed = session.scalar(
                        select(func.count())
                        .select_from(ChainEvent)
                        .where(ChainEvent.transfer_id.in_(batch.transfer_ids), ChainEvent.name == "InstructionEscrowed")
                    )
                    if escrowed:
                        continue  # its events say it did escrow: keep everything as it is
                    batch.open = False
                    for tid, row in lock_for_update(session, batch.transfer_ids).items():
                        if row.status != S.RECEIVED.value:
                            continue
                        row.batch_id, row.position = None, None
                        if tid in named:
                            transition(
                                session,
                                row,
                                S.REJECTED,
                                f"the vault refused it: {tx.error}",
                                code=ReasonCode.ESCROW_FAILED,
                                actor=ACTOR,
                            )
                elif tx.kind == TxKind.CYCLE:
                    for row in session.scalars(select(Transfer).where(Transfer.resolve_tx_id == tx.id)):
                        if row.status in (S.QUEUED.value, S.ESCROWED.value):
                            row.resolve_tx_id = None
                            row.status_reason = f"settlement cycle {tx.tx_hash} {tx.status}: {tx.error}; queued again"
                elif tx.kind == TxKind.RESOLVE:
                    for row in session.scalars(select(Transfer).where(Transfer.resolve_tx_id == tx.id)):
                        if row.status == S.ESCROWED.value:
                            row.resolve_tx_id = None
                            row.status_reason = f"settlement transaction {tx.tx_hash} {tx.status}: {tx.error}"
                log.warning("%s tx %s %s: %s", tx.kind, tx.tx_hash, tx.status, tx.error)
