"""Decoding what the auditor reads: the contracts' logs (from their ABIs, every event) and the
calldata of the vault's settlement calls (the signed instructions and quotes behind each event)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from eth_abi.abi import decode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from settlement.chain import artifact
from settlement.chain.vault import CALL_ARGUMENTS, SELECTORS, Action, SignedInstruction, SignedQuote
from settlement.eip712 import CompactSignature, Instruction, Quote, Terms


@dataclass(frozen=True, slots=True)
class Log:
    """One decoded event: ``args`` by the event's parameter names; addresses checksummed,
    ``bytes3`` currency codes as text, other bytes as bytes."""

    name: str
    address: str
    block: int
    index: int
    tx_hash: str
    args: dict[str, Any]

    @property
    def position(self) -> tuple[int, int]:
        return (self.block, self.index)


@dataclass(frozen=True, slots=True)
class _EventSpec:
    name: str
    indexed: tuple[tuple[str, str], ...]
    data_names: tuple[str, ...]
    data_types: tuple[str, ...]


@cache
def _events() -> dict[bytes, _EventSpec]:
    specs: dict[bytes, _EventSpec] = {}
    for contract_name in ("SettlementVault", "SettlementAsset"):
        for item in artifact(contract_name)["abi"]:
            if item["type"] != "event" or item.get("anonymous"):
                continue
            types = [i["type"] for i in item["inputs"]]
            topic = keccak(text=f"{item['name']}({','.join(types)})")
            specs[topic] = _EventSpec(
                name=item["name"],
                indexed=tuple((i["name"], i["type"]) for i in item["inputs"] if i["indexed"]),
                data_names=tuple(i["name"] for i in item["inputs"] if not i["indexed"]),
                data_types=tuple(i["type"] for i in item["inputs"] if not i["indexed"]),
            )
    return specs


def _value(typ: str, value: Any) -> Any:
    if typ == "address":
        return to_checksum_address(value)
    if typ == "bytes3":
        return bytes(value).decode("ascii", "replace")
    return value


def _topic_value(typ: str, topic: bytes) -> Any:
    if typ == "address":
        return to_checksum_address(topic[12:])
    if typ == "bytes3":
        return topic[:3].decode("ascii", "replace")
    if typ.startswith(("uint", "int")):
        return int.from_bytes(topic, "big")
    return topic


def decode_log(raw: dict[str, Any]) -> Log | None:
    """A log as ``eth_getLogs`` returns it, decoded; None for events not of our contracts."""
    topics = [bytes.fromhex(t[2:]) for t in raw["topics"]]
    spec = _events().get(topics[0]) if topics else None
    if spec is None or len(topics) != len(spec.indexed) + 1:
        return None
    args: dict[str, Any] = {
        name: _topic_value(typ, topic) for (name, typ), topic in zip(spec.indexed, topics[1:], strict=True)
    }
    values = decode(list(spec.data_types), bytes.fromhex(raw["data"][2:]))
    for name, typ, value in zip(spec.data_names, spec.data_types, values, strict=True):
        args[name] = _value(typ, value)
    return Log(
        name=spec.name,
        address=to_checksum_address(raw["address"]),
        block=int(raw["blockNumber"], 16),
        index=int(raw["logIndex"], 16),
        tx_hash=raw["transactionHash"],
        args=args,
    )


# ---------------------------------------------------------------------------- calldata


@dataclass(frozen=True, slots=True)
class ResolutionCall:
    """One settled or refunded position as the call gave it: the terms, and for a settlement the quote."""

    action: Action
    terms: Terms
    quote: SignedQuote | None


@dataclass(frozen=True, slots=True)
class VaultCall:
    """The settlement call of one transaction: escrows in order, or resolutions in order (the
    positions the call settled or refunded, in the order their events are emitted)."""

    function: str
    escrows: tuple[SignedInstruction, ...] = ()
    resolutions: tuple[ResolutionCall, ...] = ()


_BY_SELECTOR = {selector: name for name, selector in SELECTORS.items()}


def decode_call(data: bytes) -> VaultCall | None:
    """The vault call in ``data``, or None if it is not one of the settlement calls."""
    name = _BY_SELECTOR.get(data[:4])
    if name is None:
        return None
    args = decode(list(CALL_ARGUMENTS[name]), data[4:])
    if name == "escrow":
        return VaultCall(name, escrows=(_signed_instruction(args[1], args[2]),))
    if name == "escrowBatch":
        return VaultCall(name, escrows=tuple(_signed_instruction(i, s) for i, s in zip(args[1], args[2], strict=False)))
    if name == "settle":
        return VaultCall(name, resolutions=(ResolutionCall(Action.SETTLE, _terms(args[1]), _quote(args[2])),))
    if name == "refund":
        return VaultCall(name, resolutions=(ResolutionCall(Action.REFUND, _terms(args[2]), None),))
    quotes = [_quote(q) for q in args[3]]
    resolutions = []
    for terms, action, quote_index in args[2]:
        if action == Action.SETTLE:
            quote = quotes[quote_index] if quote_index < len(quotes) else None
            resolutions.append(ResolutionCall(Action.SETTLE, _terms(terms), quote))
        elif action == Action.REFUND:
            resolutions.append(ResolutionCall(Action.REFUND, _terms(terms), None))
    return VaultCall(name, resolutions=tuple(resolutions))


def _signed_instruction(ins: tuple[Any, ...], sig: tuple[bytes, bytes]) -> SignedInstruction:
    i, nonce, debtor, creditor, sell, amount, buy, min_buy, deadline, details = ins
    instruction = Instruction(
        i,
        nonce,
        to_checksum_address(debtor),
        to_checksum_address(creditor),
        sell,
        amount,
        buy,
        min_buy,
        deadline,
        details,
    )
    return SignedInstruction(instruction, CompactSignature(sig[0], sig[1]))


def _terms(t: tuple[Any, ...]) -> Terms:
    i, debtor, creditor, sell, amount, buy, min_buy, deadline = t
    return Terms(i, to_checksum_address(debtor), to_checksum_address(creditor), sell, amount, buy, min_buy, deadline)


def _quote(q: tuple[Any, ...]) -> SignedQuote:
    (sell, buy, rate, fee_bps, lp, expiry), sig = q
    return SignedQuote(Quote(sell, buy, rate, fee_bps, to_checksum_address(lp), expiry), CompactSignature(*sig))
