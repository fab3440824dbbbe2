"""The contracts' events, decoded from the build artifacts' ABIs: one decoder for the node's
watcher and the auditor alike.

A log is taken as ``eth_getLogs`` returns it (hex strings) or as web3 formats it (bytes).
Every event of the vault and the assets has only static arguments, so the data is read with
:func:`settlement.chain._abi.decode` (tens of thousands of logs are decoded per audit).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from eth_abi.abi import decode as eth_abi_decode
from eth_utils.crypto import keccak

from settlement.chain._abi import decode
from settlement.chain.contracts import CONTRACTS, abi_type, artifact
from settlement.eip712 import checksum_address


@dataclass(frozen=True, slots=True)
class Log:
    """One decoded event: ``args`` by the event's parameter names; addresses checksummed,
    ``bytes3`` currency codes as text, other bytes as bytes."""

    name: str
    address: str
    block: int
    block_hash: str
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

    @property
    def dynamic(self) -> bool:
        return any(t.endswith("]") or t in ("bytes", "string") for t in self.data_types)


@cache
def _events() -> dict[bytes, _EventSpec]:
    specs: dict[bytes, _EventSpec] = {}
    for contract_name in CONTRACTS:
        for item in artifact(contract_name)["abi"]:
            if item["type"] != "event" or item.get("anonymous"):
                continue
            types = [abi_type(i) for i in item["inputs"]]
            specs[keccak(text=f"{item['name']}({','.join(types)})")] = _EventSpec(
                name=item["name"],
                indexed=tuple((i["name"], i["type"]) for i in item["inputs"] if i["indexed"]),
                data_names=tuple(i["name"] for i in item["inputs"] if not i["indexed"]),
                data_types=tuple(i["type"] for i in item["inputs"] if not i["indexed"]),
            )
    return specs


def topic(name: str) -> str:
    """The topic 0 of the event ``name`` (0x-prefixed hex)."""
    for key, spec in _events().items():
        if spec.name == name:
            return "0x" + key.hex()
    raise KeyError(f"no event {name} in {', '.join(CONTRACTS)}")


def decode_log(raw: Any) -> Log | None:
    """A log decoded; None for an event not of our contracts."""
    topics = [as_bytes(t) for t in raw["topics"]]
    spec = _events().get(topics[0]) if topics else None
    if spec is None or len(topics) != len(spec.indexed) + 1:
        return None
    args: dict[str, Any] = {
        name: _topic_value(typ, value) for (name, typ), value in zip(spec.indexed, topics[1:], strict=True)
    }
    data = as_bytes(raw["data"])
    # Most events are static words (the fast decoder); a cycle's per-currency arrays are not.
    values = eth_abi_decode(spec.data_types, data) if spec.dynamic else decode(spec.data_types, data)
    for name, typ, value in zip(spec.data_names, spec.data_types, values, strict=True):
        args[name] = _value(typ, value)
    return Log(
        name=spec.name,
        address=checksum_address(raw["address"]),
        block=_int(raw["blockNumber"]),
        block_hash=as_hex(raw["blockHash"]),
        index=_int(raw["logIndex"]),
        tx_hash=as_hex(raw["transactionHash"]),
        args=args,
    )


def as_bytes(value: Any) -> bytes:
    """Bytes from JSON-RPC's hex string or from web3's bytes."""
    if isinstance(value, str):
        return bytes.fromhex(value[2:] if value[:2] in ("0x", "0X") else value)
    return bytes(value)


def as_hex(value: Any) -> str:
    """Lower-case 0x-prefixed hex of a hash as JSON-RPC or web3 gives it."""
    return "0x" + as_bytes(value).hex()


def _int(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) else int(value)


def _value(typ: str, value: Any) -> Any:
    if typ == "address":
        return checksum_address(value)
    if typ == "bytes3":
        return bytes(value).decode("ascii", "replace")
    if typ.endswith("[]"):
        return [_value(typ[:-2], v) for v in value]
    return value


def _topic_value(typ: str, value: bytes) -> Any:
    if typ == "address":
        return checksum_address(value[12:])
    if typ == "bytes3":
        return value[:3].decode("ascii", "replace")
    if typ.startswith(("uint", "int")):
        return int.from_bytes(value, "big")
    return value
