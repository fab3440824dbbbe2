"""What the pipeline's stages share: their settings, the services they act through, and the
simulation of a batch on the chain's node (:meth:`Stage._estimate`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.orm import Session
from web3.exceptions import ContractCustomError, ContractLogicError

from fx.errors import FxError
from fx.quotes import LockedQuote, QuoteEngine
from node.chain.sender import TxSender
from node.intake import instruction_of, signature_of
from node.ops.rules import RulesInForce
from node.pipeline.refusals import refusal
from node.store.db import Store
from node.store.models import NetworkState, Transfer
from settlement.chain.vault import (
    SignedInstruction,
    Vault,
)
from settlement.errors import ContractError
from settlement.lifecycle import TransferStatus

log = logging.getLogger("corridor.pipeline")

VAULT_BATCH_SIZE_MAX = 256
RESOLVED_EVENTS = ("InstructionSettled", "InstructionRefunded")
S = TransferStatus
ACTOR = "node:pipeline"


@dataclass(frozen=True, slots=True)
class PipelineSettings:
    batch_size_max: int = 256
    """Instructions per escrow or resolve transaction (the vault takes at most 256)."""
    batches_per_tick_max: int = 8
    settle_margin_s: int = 10
    """Do not settle this close to the deadline (it could be mined after it); refund after it instead."""
    refund_margin_s: int = 2
    """Refund this long after the deadline (the chain's clock may lag the node's)."""
    quote_margin_s: int = 15
    """Settle at the bank's locked quote if it is good for this long yet; else at a fresh one."""
    slots_max: int = 4096
    simulations_max: int = 64
    """Re-runs of one batch after taking refused positions out."""
    net: bool = True
    """Settle by net cycles (the default); False: escrow and settle every transfer gross."""
    cycle_rounds_max: int = 1024
    """Rounds of the gridlock resolution per cycle (see settlement.netting)."""
    queue_scan_max: int = 2048
    """Queued transfers a cycle chooses from (oldest first)."""

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size_max <= VAULT_BATCH_SIZE_MAX:
            raise ValueError(f"batch_size_max must be 1..{VAULT_BATCH_SIZE_MAX}")


class Stage:
    """What every stage of the pipeline works with (a :class:`node.pipeline.Pipeline` is all of them)."""

    def __init__(
        self,
        store: Store,
        vault: Vault,
        sender: TxSender,
        quotes: QuoteEngine,
        risk: RulesInForce | None = None,
        settings: PipelineSettings | None = None,
        clock: Callable[[], float] = time.time,
        operator: TxSender | None = None,
    ) -> None:
        self.store = store
        self.vault = vault
        self.sender = sender
        self.quotes = quotes
        self.risk = risk or RulesInForce(store, vault.manifest.assets)
        self.operator = operator
        """The operator's sender: refunds a transfer the review rejected before its deadline (None: at the deadline)."""
        self.settings = settings or PipelineSettings()
        self.clock = clock
        self._busy_slots: set[int] = set()
        """Slots found occupied on chain that the store does not know of (a store restored from backup)."""
        self._resolve_cursor = 0
        """The last batch the previous resolve round looked at."""

    def new_term(self) -> None:
        """Forget what was learnt in an earlier term as the leader: another leader may have changed it."""
        self._busy_slots.clear()
        self._resolve_cursor = 0

    def _estimate(self, data: bytes, sender: TxSender | None = None) -> int | ContractError:
        """Gas for the call with a margin, or the vault's custom error it would revert with.

        ``eth_createAccessList`` runs the call once and reports the gas it used, where
        ``eth_estimateGas`` searches for the lowest limit that succeeds by running the call many
        times over, which for a 256-instruction batch is most of a round's work. The margin
        (a third, plus 50,000) covers the refunds (at most a fifth of the gas spent) and the cold
        accesses the access list would have paid ahead. A node that does not serve the method,
        or reports a revert without its data, gets the estimate, which carries the revert data.
        """
        call = {"from": (sender or self.sender).address, "to": self.vault.manifest.vault, "data": "0x" + data.hex()}
        answer = self.sender.rpc.answer("eth_createAccessList", [call, "latest"])
        result, error = answer.get("result"), dict(answer.get("error") or {})
        if isinstance(result, dict) and "gasUsed" in result and not result.get("error"):
            return int(result["gasUsed"], 16) * 4 // 3 + 50_000
        raw = error.get("data")
        if isinstance(raw, str) and raw.startswith("0x") and len(raw) >= 10:
            return refusal(raw, error.get("message", raw))
        try:
            gas = int(self.vault.w3.eth.estimate_gas(call))  # type: ignore[arg-type]
        except (ContractCustomError, ContractLogicError) as exc:
            return refusal(getattr(exc, "data", None), exc)
        return gas * 4 // 3 + 50_000

    def _settle_quote(
        self, t: Transfer, locked: dict[str, dict[str, Any]], now_s: int, engine: QuoteEngine
    ) -> tuple[LockedQuote | None, str]:
        """The quote to settle at: the bank's locked one while it is good for ``quote_margin_s``, else
        a fresh one that meets the bank's minimum; or None and why it waits."""
        if t.quote_id and t.quote_id in locked:
            quote = LockedQuote.from_dict(locked[t.quote_id])
            if quote.signature is not None and quote.expiry >= now_s + self.settings.quote_margin_s:
                return quote, ""
        try:
            quote = engine.quote_sell(t.sell_currency, t.sell_amount, t.buy_currency)
        except FxError as exc:
            return None, f"waiting for a rate: {exc}"
        if quote.buy_amount < t.min_buy_amount:
            return None, (
                f"waiting: at today's rate it buys {quote.buy_amount} {t.buy_currency}, below the bank's minimum "
                f"of {t.min_buy_amount}; refunded at the deadline if the rate does not come back"
            )
        return quote, ""


_T = TypeVar("_T")


def chunks(items: list[_T], size: int) -> Iterable[list[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def paused(session: Session) -> bool:
    """Whether the operator has paused the network: no stage sends anything then."""
    state = session.get(NetworkState, 1)
    return state is not None and state.paused


def signed_instruction(t: Transfer) -> SignedInstruction:
    return SignedInstruction(instruction_of(t), signature_of(t))
