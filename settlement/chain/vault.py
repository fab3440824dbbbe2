"""A thin, typed client of the settlement vault for scripts, tests and the node."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from functools import cache

from eth_utils.abi import function_signature_to_4byte_selector
from web3 import Web3
from web3.types import TxReceipt

from settlement.chain._abi import encode
from settlement.chain.contracts import Sender, abi_type, artifact, contract
from settlement.eip712 import CompactSignature, Domain, Instruction, Quote, Terms, sign
from settlement.errors import ConfigurationError
from settlement.manifest import Manifest


class Action(IntEnum):
    KEEP = 0
    SETTLE = 1
    REFUND = 2
    RESOLVED = 3


@dataclass(frozen=True, slots=True)
class SignedInstruction:
    instruction: Instruction
    signature: CompactSignature


@dataclass(frozen=True, slots=True)
class SignedQuote:
    quote: Quote
    signature: CompactSignature

    def as_tuple(self) -> tuple[object, ...]:
        return (self.quote.as_tuple(), self.signature.as_tuple())


@dataclass(frozen=True, slots=True)
class Balance:
    available: int
    escrowed: int
    flags: int

    @property
    def total(self) -> int:
        """Available and escrowed: the participant's settlement balance."""
        return self.available + self.escrowed


SETTLEMENT_CALLS = ("escrow", "escrowBatch", "settle", "refund", "resolveBatch", "settleCycle")
"""The vault's functions that escrow and resolve instructions: the node encodes their calldata
directly, and the auditor decodes it from mined transactions."""


@cache
def call_arguments() -> dict[str, tuple[str, ...]]:
    """Each settlement call's argument types, from the vault's ABI in the build artifacts."""
    abi = artifact("SettlementVault")["abi"]
    found = {
        item["name"]: tuple(abi_type(i) for i in item["inputs"])
        for item in abi
        if item["type"] == "function" and item["name"] in SETTLEMENT_CALLS
    }
    missing = set(SETTLEMENT_CALLS) - set(found)
    if missing:
        raise ConfigurationError(f"the vault's ABI has no {', '.join(sorted(missing))}: rebuild the contracts")
    return found


@cache
def selectors() -> dict[str, bytes]:
    """Each settlement call's 4-byte selector."""
    return {
        name: function_signature_to_4byte_selector(f"{name}({','.join(types)})")
        for name, types in call_arguments().items()
    }


def escrow_batch_calldata(slot: int, batch: list[SignedInstruction]) -> bytes:
    """``escrowBatch`` calldata, encoded directly: the node builds hundreds a minute, of values it
    has already checked, which web3's contract layer would validate field by field again."""
    return selectors()["escrowBatch"] + encode(
        list(call_arguments()["escrowBatch"]),
        [slot, [s.instruction.as_tuple() for s in batch], [s.signature.as_tuple() for s in batch]],
    )


def resolve_batch_calldata(
    escrower: str, slot: int, items: list[tuple[Terms, Action, int]], quotes: list[SignedQuote]
) -> bytes:
    """``resolveBatch`` calldata: every position of the slot's batch in order, and the quotes."""
    return selectors()["resolveBatch"] + encode(
        list(call_arguments()["resolveBatch"]),
        [escrower, slot, [(t.as_tuple(), int(a), qi) for t, a, qi in items], [q.as_tuple() for q in quotes]],
    )


@dataclass(frozen=True, slots=True)
class CycleEntry:
    """One never-escrowed signed instruction of a net cycle and the index of its quote."""

    signed: SignedInstruction
    quote_index: int

    def as_tuple(self) -> tuple[object, ...]:
        return (self.signed.instruction.as_tuple(), self.signed.signature.as_tuple(), self.quote_index)


@dataclass(frozen=True, slots=True)
class EscrowedEntry:
    """One instruction escrowed alone in the sender's slot that joins a net cycle."""

    slot: int
    terms: Terms
    quote_index: int

    def as_tuple(self) -> tuple[object, ...]:
        return (self.slot, self.terms.as_tuple(), self.quote_index)


def settle_cycle_calldata(
    entries: list[CycleEntry], quotes: list[SignedQuote], escrowed: list[EscrowedEntry] | None = None
) -> bytes:
    """``settleCycle`` calldata: the cycle's signed instructions, the escrowed ones that join it
    and the quotes they index."""
    return selectors()["settleCycle"] + encode(
        list(call_arguments()["settleCycle"]),
        [[e.as_tuple() for e in entries], [e.as_tuple() for e in escrowed or []], [q.as_tuple() for q in quotes]],
    )


class Vault:
    def __init__(self, w3: Web3, manifest: Manifest) -> None:
        self.w3 = w3
        self.manifest = manifest
        self.contract = contract(w3, "SettlementVault", manifest.vault)
        self.domain = Domain(manifest.chain_id, manifest.vault)

    def sign_instruction(self, instruction: Instruction, key: str) -> SignedInstruction:
        return SignedInstruction(instruction, sign(self.domain, instruction, key))

    def sign_quote(self, quote: Quote, key: str) -> SignedQuote:
        return SignedQuote(quote, sign(self.domain, quote, key))

    def escrow(self, sender: Sender, slot: int, signed: SignedInstruction) -> TxReceipt:
        return sender.transact(
            self.contract.functions.escrow(slot, signed.instruction.as_tuple(), signed.signature.as_tuple())
        )

    def escrow_batch(self, sender: Sender, slot: int, batch: list[SignedInstruction]) -> TxReceipt:
        return sender.transact(
            self.contract.functions.escrowBatch(
                slot,
                [s.instruction.as_tuple() for s in batch],
                [s.signature.as_tuple() for s in batch],
            )
        )

    def settle(self, sender: Sender, slot: int, terms: Terms, quote: SignedQuote) -> TxReceipt:
        return sender.transact(self.contract.functions.settle(slot, terms.as_tuple(), quote.as_tuple()))

    def refund(self, sender: Sender, escrower: str, slot: int, terms: Terms) -> TxReceipt:
        return sender.transact(self.contract.functions.refund(escrower, slot, terms.as_tuple()))

    def resolve_batch(
        self,
        sender: Sender,
        escrower: str,
        slot: int,
        items: list[tuple[Terms, Action, int]],
        quotes: list[SignedQuote],
    ) -> TxReceipt:
        return sender.transact(
            self.contract.functions.resolveBatch(
                escrower,
                slot,
                [(terms.as_tuple(), int(action), qi) for terms, action, qi in items],
                [q.as_tuple() for q in quotes],
            )
        )

    def settle_cycle(
        self,
        sender: Sender,
        entries: list[CycleEntry],
        quotes: list[SignedQuote],
        escrowed: list[EscrowedEntry] | None = None,
    ) -> TxReceipt:
        return sender.transact(
            self.contract.functions.settleCycle(
                [e.as_tuple() for e in entries], [e.as_tuple() for e in escrowed or []], [q.as_tuple() for q in quotes]
            )
        )

    def publish_rates(self, sender: Sender, points: list[tuple[str, str, int]]) -> TxReceipt:
        return sender.transact(
            self.contract.functions.publishReferenceRates([(s.encode(), b.encode(), rate) for s, b, rate in points])
        )

    def balance(self, participant: str, code: str) -> Balance:
        available, escrowed, flags = self.contract.functions.accountOf(
            Web3.to_checksum_address(participant), code.encode()
        ).call()
        return Balance(available, escrowed, flags)

    def reference_rate(self, sell: str, buy: str) -> tuple[int, int]:
        """The on-chain reference rate of a pair (18 decimals; 0 if never published) and when it was set."""
        ref = self.contract.functions.referenceRate(sell.encode(), buy.encode()).call()
        return int(ref[0]), int(ref[1])

    def band_bps(self) -> int:
        """How far (basis points) a quote's rate may lie from the reference rate, as the vault holds it now."""
        return int(self.contract.functions.config().call()[1])

    def slot_root(self, escrower: str, slot: int) -> bytes:
        root: bytes = self.contract.functions.slotRoot(escrower, slot).call()
        return root
