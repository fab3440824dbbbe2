"""Decoding what the auditor reads beyond the logs (which :mod:`settlement.chain.events` decodes):
the calldata of the vault's settlement calls (the signed instructions and quotes behind each event)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode
from eth_utils.address import to_checksum_address

from settlement.chain.vault import Action, SignedInstruction, SignedQuote, call_arguments, selectors
from settlement.eip712 import CompactSignature, Instruction, Quote, Terms

# ---------------------------------------------------------------------------- calldata


@dataclass(frozen=True, slots=True)
class ResolutionCall:
    """One settled or refunded position as the call gave it: the terms, and for a settlement the quote."""

    action: Action
    terms: Terms
    quote: SignedQuote | None


@dataclass(frozen=True, slots=True)
class NettedCall:
    """One never-escrowed instruction of a net cycle as the call gave it, and its quote."""

    signed: SignedInstruction
    quote: SignedQuote | None


@dataclass(frozen=True, slots=True)
class VaultCall:
    """The settlement call of one transaction: escrows in order, resolutions in order (the
    positions the call settled or refunded, in the order their events are emitted), and a net
    cycle's netted instructions in order."""

    function: str
    escrows: tuple[SignedInstruction, ...] = ()
    resolutions: tuple[ResolutionCall, ...] = ()
    netted: tuple[NettedCall, ...] = ()


def decode_call(data: bytes) -> VaultCall | None:
    """The vault call in ``data``, or None if it is not one of the settlement calls."""
    name = next((n for n, selector in selectors().items() if selector == data[:4]), None)
    if name is None:
        return None
    args = decode(list(call_arguments()[name]), data[4:])
    if name == "escrow":
        return VaultCall(name, escrows=(_signed_instruction(args[1], args[2]),))
    if name == "escrowBatch":
        return VaultCall(name, escrows=tuple(_signed_instruction(i, s) for i, s in zip(args[1], args[2], strict=False)))
    if name == "settle":
        return VaultCall(name, resolutions=(ResolutionCall(Action.SETTLE, _terms(args[1]), _quote(args[2])),))
    if name == "refund":
        return VaultCall(name, resolutions=(ResolutionCall(Action.REFUND, _terms(args[2]), None),))
    if name == "settleCycle":
        return _cycle_call(args)
    quotes = [_quote(q) for q in args[3]]
    resolutions = []
    for terms, action, quote_index in args[2]:
        if action == Action.SETTLE:
            quote = quotes[quote_index] if quote_index < len(quotes) else None
            resolutions.append(ResolutionCall(Action.SETTLE, _terms(terms), quote))
        elif action == Action.REFUND:
            resolutions.append(ResolutionCall(Action.REFUND, _terms(terms), None))
    return VaultCall(name, resolutions=tuple(resolutions))


def _cycle_call(args: tuple[Any, ...]) -> VaultCall:
    items, escrowed, quotes = args[0], args[1], [_quote(q) for q in args[2]]

    def quote_at(index: int) -> SignedQuote | None:
        return quotes[index] if index < len(quotes) else None

    netted = tuple(NettedCall(_signed_instruction(ins, sig), quote_at(qi)) for ins, sig, qi in items)
    joined = tuple(ResolutionCall(Action.SETTLE, _terms(terms), quote_at(qi)) for _, terms, qi in escrowed)
    return VaultCall("settleCycle", resolutions=joined, netted=netted)


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
