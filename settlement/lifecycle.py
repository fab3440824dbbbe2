"""A transfer's states and the moves between them.

``RECEIVED → ESCROWED → SETTLED → FINAL``, with the terminal branches ``REJECTED`` (never
reached the chain: refused by risk, cancelled by the bank, or expired before escrow),
``REFUNDED`` (escrowed, then given back) and ``FAILED`` (needs an operator). A state that
claims something happened on chain (ESCROWED, SETTLED, REFUNDED, FINAL) is written only
from a confirmed event. A chain reorganisation may take ESCROWED or SETTLED back one step;
nothing leaves a terminal state.
"""

from __future__ import annotations

from enum import StrEnum

from settlement.errors import CorridorError


class TransferStatus(StrEnum):
    RECEIVED = "RECEIVED"
    ESCROWED = "ESCROWED"
    SETTLED = "SETTLED"
    FINAL = "FINAL"
    REJECTED = "REJECTED"
    REFUNDED = "REFUNDED"
    FAILED = "FAILED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({TransferStatus.FINAL, TransferStatus.REJECTED, TransferStatus.REFUNDED, TransferStatus.FAILED})

S = TransferStatus
ALLOWED: dict[TransferStatus, frozenset[TransferStatus]] = {
    S.RECEIVED: frozenset({S.ESCROWED, S.REJECTED, S.FAILED}),
    # A reorg can undo an escrow (back to RECEIVED); a settlement can follow or a refund.
    S.ESCROWED: frozenset({S.SETTLED, S.REFUNDED, S.RECEIVED, S.FAILED}),
    S.SETTLED: frozenset({S.FINAL, S.ESCROWED, S.FAILED}),
    S.FINAL: frozenset(),
    S.REJECTED: frozenset(),
    S.REFUNDED: frozenset(),
    S.FAILED: frozenset(),
}


class TransitionError(CorridorError, ValueError):
    """A transfer was asked to move to a state it cannot reach from where it is."""


def check_transition(current: TransferStatus, new: TransferStatus) -> None:
    if new not in ALLOWED[current]:
        raise TransitionError(f"a transfer cannot go from {current} to {new}")
