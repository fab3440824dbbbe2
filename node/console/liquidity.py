"""The liquidity page: per bank and currency the vault's balances, today's net debit against its cap,
the queue waiting for cover, and the recent net cycles with what they saved against gross."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from eth_abi.abi import decode, encode
from eth_utils.abi import function_signature_to_4byte_selector as selector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from node.console.chain import EVENTS_WINDOW_BLOCKS, Cycle, cycles, vault_logs
from node.store.models import Bank, Transfer
from settlement.chain.rpc import Rpc
from settlement.errors import ChainError
from settlement.lifecycle import TransferStatus
from settlement.manifest import Manifest

_ACCOUNT_OF = selector("accountOf(address,bytes3)")


@dataclass(slots=True)
class Position:
    bank: Bank
    currency: str
    available: int | None
    escrowed: int | None
    sent_today: int = 0
    received_today: int = 0
    net_debit_cap: int | None = None
    queued: int = 0
    queued_amount: int = 0

    @property
    def net_debit_today(self) -> int:
        return self.sent_today - self.received_today


@dataclass(slots=True)
class Liquidity:
    positions: list[Position]
    cycles: list[Cycle] = field(default_factory=list)
    chain_error: str = ""

    def cycle_currencies(self) -> list[str]:
        return sorted({code for c in self.cycles for code in c.gross})

    def cycle_series(self, code: str) -> list[tuple[str, int, int]]:
        """Per cycle: its number, what it moved gross in ``code`` and the net debits it booked."""
        return [(str(c.number), c.gross.get(code, 0), c.net.get(code, 0)) for c in self.cycles]

    def gross(self, code: str) -> int:
        return sum(c.gross.get(code, 0) for c in self.cycles)

    def saved(self, code: str) -> int:
        return sum(c.saved(code) for c in self.cycles)


def liquidity(session: Session, rpc: Rpc | None, manifest: Manifest) -> Liquidity:
    """Per bank and currency: the vault's balances, today's net debit against its cap, the queue."""
    banks = list(session.scalars(select(Bank).order_by(Bank.bic)))
    positions = [Position(b, c, None, None) for b in banks for c in b.currencies]
    by_key = {(p.bank.address.lower(), p.currency): p for p in positions}
    by_id = {(p.bank.id, p.currency): p for p in positions}
    day = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    live = Transfer.status.not_in((TransferStatus.REJECTED.value, TransferStatus.REFUNDED.value))
    for bank_id, ccy, amount in session.execute(
        select(Transfer.bank_id, Transfer.sell_currency, func.sum(Transfer.sell_amount))
        .where(Transfer.created_at >= day, live)
        .group_by(Transfer.bank_id, Transfer.sell_currency)
    ):
        if (p := by_id.get((bank_id, ccy))) is not None:
            p.sent_today = int(amount or 0)
    settled = (TransferStatus.SETTLED.value, TransferStatus.FINAL.value)
    for creditor, ccy, received in session.execute(
        select(Transfer.creditor, Transfer.buy_currency, func.sum(Transfer.buy_amount))
        .where(Transfer.status.in_(settled), Transfer.updated_at >= day)
        .group_by(Transfer.creditor, Transfer.buy_currency)
    ):
        if (p := by_key.get((creditor.lower(), ccy))) is not None:
            p.received_today = int(received or 0)
    for bank_id, ccy, n, amount in session.execute(
        select(Transfer.bank_id, Transfer.sell_currency, func.count(), func.sum(Transfer.sell_amount))
        .where(Transfer.status == TransferStatus.QUEUED.value)
        .group_by(Transfer.bank_id, Transfer.sell_currency)
    ):
        if (p := by_id.get((bank_id, ccy))) is not None:
            p.queued, p.queued_amount = int(n), int(amount or 0)
    result = Liquidity(positions)
    if rpc is None:
        result.chain_error = "the node has no chain connection"
        return result
    try:
        head = rpc.block_number()
        calls = [
            (manifest.vault, _ACCOUNT_OF + encode(["address", "bytes3"], [p.bank.address, p.currency.encode()]))
            for p in positions
        ]
        for p, answer in zip(positions, rpc.eth_calls(calls, head), strict=True):
            p.available, p.escrowed, _ = decode(["uint112", "uint112", "uint32"], answer)
        result.cycles = cycles(vault_logs(rpc, manifest, head, EVENTS_WINDOW_BLOCKS))
    except ChainError as exc:
        result.chain_error = str(exc)[:300]
    return result
