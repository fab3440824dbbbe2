"""A transfer's states and the moves between them.

``RECEIVED → QUEUED → SETTLED → FINAL`` by a net settlement cycle (the default), or
``RECEIVED → ESCROWED → SETTLED → FINAL`` gross (a transfer held for review, or a node set to
settle gross), with the terminal branches ``REJECTED`` (never reached the chain: refused by
risk, cancelled by the bank, or expired before escrow or in the queue), ``REFUNDED``
(escrowed, then given back) and ``FAILED`` (needs an operator). A state that claims
something happened on chain (ESCROWED, SETTLED, REFUNDED, FINAL) is written only from a
confirmed event. A chain reorganisation may take ESCROWED or SETTLED back one step (a
netted SETTLED back to QUEUED); nothing leaves a terminal state.
"""

from __future__ import annotations

from enum import StrEnum

from settlement.errors import CorridorError


class TransferStatus(StrEnum):
    RECEIVED = "RECEIVED"
    QUEUED = "QUEUED"
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
    S.RECEIVED: frozenset({S.QUEUED, S.ESCROWED, S.REJECTED, S.FAILED}),
    # Waits for a net cycle that can fund it; settled by one, or rejected in the queue.
    S.QUEUED: frozenset({S.SETTLED, S.REJECTED, S.FAILED}),
    # A reorg can undo an escrow (back to RECEIVED); a settlement can follow or a refund.
    S.ESCROWED: frozenset({S.SETTLED, S.REFUNDED, S.RECEIVED, S.FAILED}),
    # A reorg takes a settlement back to where it came from: escrow, or the queue.
    S.SETTLED: frozenset({S.FINAL, S.ESCROWED, S.QUEUED, S.FAILED}),
    S.FINAL: frozenset(),
    S.REJECTED: frozenset(),
    S.REFUNDED: frozenset(),
    S.FAILED: frozenset(),
}


class ReasonCode(StrEnum):
    """Why a transfer is where it is: the ``code`` of its status and of each history entry.

    RECEIVED at intake has no code (an empty string). A position the vault refused carries the
    vault's custom error name instead (for example ``InstructionNonceUsed``), as decoded from
    the revert.
    """

    CANCELLED = "cancelled"
    QUEUED = "queued"
    INSUFFICIENT_COVER = "insufficient_cover"
    """Queued: the debtor's net debit in the next cycle would not be covered (the reason gives the shortfall)."""
    ESCROWED = "escrowed"
    SETTLED = "settled"
    FINAL = "final"
    REFUNDED = "refunded"
    REORG = "reorg"
    DEADLINE_PASSED = "deadline_passed"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    BANK_FROZEN = "bank_frozen"
    ESCROW_FAILED = "escrow_failed"
    REVIEW_REJECTED = "review_rejected"
    # The risk engine's decisions (see settlement.risk).
    APPROVED = "approved"
    SANCTIONS_BIC = "sanctions_bic"
    SANCTIONS_COUNTRY = "sanctions_country"
    SANCTIONS_NAME = "sanctions_name"
    CORRIDOR_PAIR = "corridor_pair"
    CORRIDOR_COUNTRY = "corridor_country"
    LIMIT_PER_TRANSFER = "limit_per_transfer"
    DAILY_OUTFLOW = "daily_outflow"
    NET_DEBIT_CAP = "net_debit_cap"
    VELOCITY_PER_MINUTE = "velocity_per_minute"
    NEW_BENEFICIARY_BURST = "new_beneficiary_burst"
    REVIEW_AMOUNT = "review_amount"
    REVIEW_SCREENING = "review_screening"


class ReviewState(StrEnum):
    """A transfer the risk rules held for the operator: waiting, or decided."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class TxKind(StrEnum):
    """What a transaction the node signs does."""

    ESCROW = "escrow"
    RESOLVE = "resolve"
    CYCLE = "cycle"
    """A net settlement cycle (``settleCycle``)."""
    SWITCH = "switch"
    """An operator's freeze, unfreeze, pause or resume."""


class TxStatus(StrEnum):
    """A signed transaction's fate: ``signed -> sent -> mined -> confirmed``, or ``failed``
    (mined and reverted) or ``dropped`` (its nonce went to another transaction)."""

    SIGNED = "signed"
    SENT = "sent"
    MINED = "mined"
    CONFIRMED = "confirmed"
    FAILED = "failed"
    DROPPED = "dropped"


LIVE_TX = (TxStatus.SIGNED, TxStatus.SENT, TxStatus.MINED)
"""Statuses of a transaction whose outcome is not settled yet."""


class ParticipantKind(StrEnum):
    BANK = "bank"
    LIQUIDITY_PROVIDER = "lp"


class TransitionError(CorridorError, ValueError):
    """A transfer was asked to move to a state it cannot reach from where it is."""


def check_transition(current: TransferStatus, new: TransferStatus) -> None:
    if new not in ALLOWED[current]:
        raise TransitionError(f"a transfer cannot go from {current} to {new}")
