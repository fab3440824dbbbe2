"""What the auditor's replay builds from the events: participants, balances, escrows, rates."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from eth_utils.crypto import keccak

from settlement.audit.report import major
from settlement.chain.events import Log
from settlement.chain.vault import SignedInstruction
from settlement.eip712 import id_to_uuid

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
OPERATOR_ROLE = keccak(text="OPERATOR_ROLE")
FEES_ACCRUED_MAX = 2**72 - 1
"""The vault accrues fees per pair in 72 bits and books a fee on the fee account at once when
the accrual would overflow (``_accrueFee``)."""

BANK, LIQUIDITY_PROVIDER, FEE_ACCOUNT = 1, 2, 3
KIND_NAMES = {BANK: "bank", LIQUIDITY_PROVIDER: "liquidity provider", FEE_ACCOUNT: "fee account"}


@dataclass
class ParticipantState:
    kind: int
    bic: str
    active: bool = True
    frozen: bool = False

    def usable_as(self, kind: int) -> bool:
        return self.kind == kind and self.active and not self.frozen


@dataclass(frozen=True, slots=True)
class Movement:
    """One change of one participant's balance in one currency, and what caused it."""

    participant: str
    currency: str
    block: int
    index: int
    tx_hash: str
    kind: str
    uetr: str
    available: int
    escrowed: int


@dataclass
class EscrowRecord:
    log: Log
    signed: SignedInstruction | None
    sell_currency: str
    sell_amount: int
    debtor: str
    resolved_by: Log | None = None


@dataclass
class Ledger:
    """The state rebuilt from events (and what the checks need of it afterwards)."""

    participants: dict[str, ParticipantState] = field(default_factory=dict)
    enabled: set[tuple[str, str]] = field(default_factory=set)
    decimals: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    """Asset address → currency code."""
    balances: dict[tuple[str, str], list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    fees_accrued: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    rates: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    """Pair → (rate, timestamp of its publication)."""
    minted: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    burned: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    vault_received: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    vault_sent: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    movements: list[Movement] = field(default_factory=list)
    escrows: dict[bytes, list[EscrowRecord]] = field(default_factory=lambda: defaultdict(list))
    settlements: dict[bytes, Log] = field(default_factory=dict)
    """The (first) settlement event of each id."""
    refunds: dict[bytes, Log] = field(default_factory=dict)
    netted: int = 0
    """Instructions settled by net cycles without an escrow."""
    cycles: dict[str, int] = field(default_factory=dict)
    """Transaction hash of each net cycle -> its number."""

    def name(self, address: str) -> str:
        p = self.participants.get(address)
        return f"{p.bic} {address}" if p else address

    def amount(self, value: int, currency: str) -> str:
        return f"{major(value, self.decimals.get(currency, 0))} {currency}"


Fail = Callable[..., None]
"""Records a finding against the position being checked (see ``Replay._failer``)."""


def participant_state(p: ParticipantState | None) -> str:
    if p is None:
        return "not registered"
    flags = [KIND_NAMES.get(p.kind, str(p.kind))]
    if not p.active:
        flags.append("inactive")
    if p.frozen:
        flags.append("frozen")
    return ", ".join(flags)


def uetr_text(value: bytes) -> str:
    """An instruction id as a UETR (a UUID) where it is one, else as hex."""
    is_uetr = len(value) == 32 and value[16:] == b"\0" * 16
    return str(id_to_uuid(value)) if is_uetr else "0x" + value.hex()
