"""ABI encoding of static values, for the hot paths: EIP-712 struct hashes, batch calldata and
the vault's event data.

Every type Corridor hashes or sends in bulk is static (``uintN``, ``bytesN``, ``address`` and
tuples of them), so its encoding is its 32-byte words one after another; an array of such
tuples is its length and then the tuples. eth-abi's general encoder validates and dispatches
per value; these encoders are compiled once per type string and check what matters (ranges
and lengths, raising ``ValueError``). The unit tests prove them equal to eth-abi's on random
values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

Encoder = Callable[[Any], bytes]
_WORD = 32


def encode(types: Sequence[str], values: Sequence[Any]) -> bytes:
    """``eth_abi.encode(types, values)`` for static types and dynamic arrays of static types."""
    if len(types) != len(values):
        raise ValueError(f"{len(types)} types, {len(values)} values")
    heads: list[bytes] = []
    tails: list[bytes] = []
    offset = _WORD * len(types)
    for typ, value in zip(types, values, strict=True):
        if typ.endswith("[]"):
            element = _encoder(typ[:-2])
            tail = len(value).to_bytes(_WORD, "big") + b"".join(element(v) for v in value)
            heads.append(offset.to_bytes(_WORD, "big"))
            tails.append(tail)
            offset += len(tail)
        else:
            heads.append(_encoder(typ)(value))
    return b"".join(heads) + b"".join(tails)


def decode(types: Sequence[str], data: bytes) -> tuple[Any, ...]:
    """``eth_abi.decode(types, data)`` for static scalar types (event data): uints, bools, bytes, and
    addresses as lower-case hex; padding that is not zero is refused, as eth-abi refuses it."""
    if len(data) < _WORD * len(types):
        raise ValueError(f"{len(data)} bytes cannot hold {len(types)} words")
    out: list[Any] = []
    for index, typ in enumerate(types):
        word = data[_WORD * index : _WORD * (index + 1)]
        if typ == "address":
            if any(word[:12]):
                raise ValueError(f"word {index} is not an address")
            out.append("0x" + word[12:].hex())
        elif typ == "bool":
            if word[:31] != bytes(31) or word[31] > 1:
                raise ValueError(f"word {index} is not a bool")
            out.append(word[31] == 1)
        elif match := re.fullmatch(r"uint(\d+)", typ):
            value = int.from_bytes(word, "big")
            if value >> int(match[1]):
                raise ValueError(f"word {index} does not fit a {typ}")
            out.append(value)
        elif match := re.fullmatch(r"bytes(\d+)", typ):
            size = int(match[1])
            if any(word[size:]):
                raise ValueError(f"word {index} is not a {typ}")
            out.append(word[:size])
        else:
            raise ValueError(f"not a static scalar type this decoder knows: {typ}")
    return tuple(out)


@lru_cache(maxsize=64)
def _encoder(typ: str) -> Encoder:
    if typ.startswith("("):
        parts = [_encoder(t) for t in _split(typ[1:-1])]

        def tuple_(value: Any) -> bytes:
            if len(value) != len(parts):
                raise ValueError(f"{typ} takes {len(parts)} values, not {len(value)}")
            return b"".join(part(v) for part, v in zip(parts, value, strict=True))

        return tuple_
    if typ == "address":
        return _address
    if match := re.fullmatch(r"uint(\d+)", typ):
        return _uint(int(match[1]))
    if match := re.fullmatch(r"bytes(\d+)", typ):
        return _fixed_bytes(int(match[1]))
    raise ValueError(f"not a static type this encoder knows: {typ}")


def _split(inner: str) -> list[str]:
    """The components of a tuple type's inside, at its top level."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(inner):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(inner[start:i])
            start = i + 1
    parts.append(inner[start:])
    return parts


def _uint(bits: int) -> Encoder:
    bound = 1 << bits

    def uint(value: Any) -> bytes:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < bound:
            raise ValueError(f"{value!r} is not a uint{bits}")
        return value.to_bytes(_WORD, "big")

    return uint


def _fixed_bytes(size: int) -> Encoder:
    def fixed(value: Any) -> bytes:
        if not isinstance(value, bytes | bytearray) or len(value) > size:
            raise ValueError(f"{value!r} is not bytes{size}")
        return bytes(value).ljust(_WORD, b"\0")

    return fixed


def _address(value: Any) -> bytes:
    raw = bytes.fromhex(value[2:]) if isinstance(value, str) and value[:2] in ("0x", "0X") else value
    if not isinstance(raw, bytes) or len(raw) != 20:
        raise ValueError(f"{value!r} is not an address")
    return b"\0" * 12 + raw
