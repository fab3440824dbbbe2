"""Risk checks a transfer passes before the node escrows it.

The pipeline asks a :class:`RiskCheck` about each RECEIVED transfer and records its
:class:`Decision` (a reason code and a sentence) in the transfer's history. The default
check applies only the operator's per-transfer limits; the full rule set (velocity, corridors,
screening, review queue) plugs in here through the same interface.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class TransferFacts:
    """What a risk rule may look at: the instruction's terms and the parties' directory entries."""

    id: str
    debtor_bic: str
    creditor_bic: str
    debtor_country: str
    creditor_country: str
    sell_currency: str
    sell_amount: int
    buy_currency: str
    limits: dict[str, int] = field(default_factory=dict)
    """The debtor bank's per-transfer maximum per sell currency (minor units)."""


@dataclass(frozen=True, slots=True)
class Decision:
    approved: bool
    code: str
    reason: str

    @classmethod
    def approve(cls, reason: str = "passed the risk checks") -> Decision:
        return cls(True, "approved", reason)

    @classmethod
    def reject(cls, code: str, reason: str) -> Decision:
        return cls(False, code, reason)


class RiskCheck(Protocol):
    def check(self, facts: TransferFacts) -> Decision: ...


class LimitsOnly:
    """The default: the operator's per-transfer limit of the debtor bank, nothing else."""

    def check(self, facts: TransferFacts) -> Decision:
        limit = facts.limits.get(facts.sell_currency)
        if limit is not None and facts.sell_amount > limit:
            return Decision.reject(
                "limit_per_transfer",
                f"{facts.sell_amount} {facts.sell_currency} (minor units) is above {facts.debtor_bic}'s "
                f"per-transfer limit of {limit}",
            )
        return Decision.approve()
