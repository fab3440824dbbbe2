"""The refusals a simulation names: the vault's custom error decoded from a batch's revert, and
the positions of the batch it names (taken out, so that one bad instruction never sinks a batch)."""

from __future__ import annotations

from fx.quotes import LockedQuote
from node.store.models import Transfer
from settlement.chain import decode_revert
from settlement.chain.vault import (
    Action,
)
from settlement.eip712 import uetr_of
from settlement.errors import ContractError, InstructionNonceUsed, InsufficientAvailable, ParticipantNotUsable


class Hold(Exception):
    """Nothing of this batch can go now (the vault is paused, or an error we cannot pin on a position)."""


def refusal(raw: object, what: object) -> ContractError:
    """The vault's custom error in revert data; anything else holds the batch."""
    decoded = decode_revert(raw) if isinstance(raw, str | bytes) and raw else None
    if decoded is None:
        raise Hold(f"the vault refused the batch with an unknown error: {what}")
    return decoded


def named_in(error: str) -> set[str]:
    """UETRs a decoded revert message names (its ``id=0x...`` field)."""
    found = set()
    for part in error.replace("(", " ").replace(",", " ").replace(")", " ").split():
        if part.startswith(("id=0x", "instructionId=0x")):
            found.add(uetr_of(bytes.fromhex(part.split("=0x", 1)[1])))
    return found


def culprits(transfers: list[Transfer], error: ContractError) -> list[Transfer]:
    f = error.fields
    if "id" in f and isinstance(f["id"], bytes):
        uetr = uetr_of(f["id"])
        return [t for t in transfers if t.id == uetr]
    if isinstance(error, InstructionNonceUsed):
        return [t for t in transfers if t.debtor == f["debtor"] and t.nonce == f["nonce"]]
    if isinstance(error, ParticipantNotUsable | InsufficientAvailable):
        ccy = bytes(f["currency"]).decode()
        matching = [t for t in transfers if t.debtor == f["participant"] and t.sell_currency == ccy]
        return matching if isinstance(error, ParticipantNotUsable) else matching[-1:]
    return []


def keep_for(
    transfers: list[Transfer], actions: dict[str, Action], quotes: dict[str, LockedQuote], err: ContractError
) -> list[str]:
    f = err.fields
    acting = [t for t in transfers if actions[t.id] in (Action.SETTLE, Action.REFUND)]
    if "id" in f and isinstance(f["id"], bytes):
        uetr = uetr_of(f["id"])
        return [t.id for t in acting if t.id == uetr]
    if "instructionId" in f:
        uetr = uetr_of(f["instructionId"])
        return [t.id for t in acting if t.id == uetr]
    if "quoteHash" in f:
        return [t.id for t in acting if t.id in quotes and quotes[t.id].quote_hash == f["quoteHash"]]
    if "sellCurrency" in f and "buyCurrency" in f:
        pair = (bytes(f["sellCurrency"]).decode(), bytes(f["buyCurrency"]).decode())
        return [t.id for t in acting if actions[t.id] is Action.SETTLE and (t.sell_currency, t.buy_currency) == pair]
    if "participant" in f:
        return [
            t.id
            for t in acting
            if f["participant"] in (t.debtor, t.creditor)
            or (t.id in quotes and quotes[t.id].liquidity_provider == f["participant"])
        ]
    return []
