"""A thin, typed client of the settlement vault for scripts, tests and the node."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from eth_utils.abi import function_signature_to_4byte_selector
from web3 import Web3
from web3.types import TxReceipt

from settlement.chain import Sender, contract
from settlement.chain._abi import encode
from settlement.eip712 import CompactSignature, Domain, Instruction, Quote, Terms, sign
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


# The settlement calls' argument types, for encoding calldata directly (the node) and for
# decoding it from mined transactions (the auditor).
ABI_INSTRUCTION = "(bytes32,uint256,address,address,bytes3,uint128,bytes3,uint128,uint40,bytes32)"
ABI_TERMS = "(bytes32,address,address,bytes3,uint128,bytes3,uint128,uint40)"
ABI_SIGNATURE = "(bytes32,bytes32)"
ABI_SIGNED_QUOTE = f"((bytes3,bytes3,uint128,uint16,address,uint40),{ABI_SIGNATURE})"
CALL_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "escrow": ("uint256", ABI_INSTRUCTION, ABI_SIGNATURE),
    "escrowBatch": ("uint256", f"{ABI_INSTRUCTION}[]", f"{ABI_SIGNATURE}[]"),
    "settle": ("uint256", ABI_TERMS, ABI_SIGNED_QUOTE),
    "refund": ("address", "uint256", ABI_TERMS),
    "resolveBatch": ("address", "uint256", f"({ABI_TERMS},uint8,uint16)[]", f"{ABI_SIGNED_QUOTE}[]"),
}
SELECTORS = {
    name: function_signature_to_4byte_selector(f"{name}({','.join(types)})") for name, types in CALL_ARGUMENTS.items()
}


def escrow_batch_calldata(slot: int, batch: list[SignedInstruction]) -> bytes:
    """``escrowBatch`` calldata, encoded directly (the node builds hundreds a minute; web3's
    contract layer re-validates every field against the ABI and is ten times slower)."""
    return SELECTORS["escrowBatch"] + encode(
        list(CALL_ARGUMENTS["escrowBatch"]),
        [slot, [s.instruction.as_tuple() for s in batch], [s.signature.as_tuple() for s in batch]],
    )


def resolve_batch_calldata(
    escrower: str, slot: int, items: list[tuple[Terms, Action, int]], quotes: list[SignedQuote]
) -> bytes:
    """``resolveBatch`` calldata: every position of the slot's batch in order, and the quotes."""
    return SELECTORS["resolveBatch"] + encode(
        list(CALL_ARGUMENTS["resolveBatch"]),
        [escrower, slot, [(t.as_tuple(), int(a), qi) for t, a, qi in items], [q.as_tuple() for q in quotes]],
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
