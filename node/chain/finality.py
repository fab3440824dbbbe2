"""When a settlement is final: ``confirmations`` blocks deep, or at or below the chain's finalized block.

A chain with a finality gadget says which block can no longer be undone (QBFT finalizes each
block as it is made; post-merge Ethereum finalizes an epoch about two epochs on), and serves it
as the ``finalized`` block tag. On such a chain FINAL follows the tag (``CORRIDOR_NODE_FINALITY
=finalized``); elsewhere a settlement counts as final once it is ``confirmations`` blocks deep,
its own block included. The watcher and the reconciliation both ask here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from settlement.chain.rpc import Rpc
from settlement.errors import ChainError

Rule = Literal["confirmations", "finalized"]


@dataclass(frozen=True, slots=True)
class Finality:
    rule: Rule = "confirmations"
    confirmations: int = 3

    def cutoff(self, rpc: Rpc, head: int) -> int:
        """The newest block whose events are final, with the chain's head at ``head``."""
        if self.rule == "confirmations":
            return head - self.confirmations + 1
        block = rpc.call("eth_getBlockByNumber", ["finalized", False])
        if not block or block.get("number") is None:
            raise ChainError("the chain serves no finalized block: set CORRIDOR_NODE_FINALITY=confirmations")
        return min(int(block["number"], 16), head)

    def describe(self) -> str:
        """How a transfer becomes FINAL, for its history."""
        if self.rule == "confirmations":
            return f"after {self.confirmations} confirmations"
        return "once the chain finalizes its block"

    def reason(self, block: int, head: int, cutoff: int) -> str:
        """Why an event of ``block`` is final now."""
        if self.rule == "confirmations":
            return f"{head - block + 1} confirmations (needs {self.confirmations})"
        return f"finalized (the chain's finalized block is {cutoff})"
