"""The static ABI encoder of the hot paths (``settlement.chain._abi``) against eth-abi's."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi.abi import decode as eth_abi_decode
from eth_abi.abi import encode as eth_abi_encode
from hypothesis import given
from hypothesis import strategies as st

from settlement.chain._abi import _split, decode, encode
from settlement.chain.vault import SETTLEMENT_CALLS, call_arguments

addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())


def _value(typ: str) -> st.SearchStrategy[Any]:
    if typ.endswith("[]"):
        return st.lists(_value(typ[:-2]), max_size=4)
    if typ.startswith("("):
        return st.tuples(*(_value(p) for p in _split(typ[1:-1])))
    if typ == "address":
        return addresses
    if typ.startswith("uint"):
        return st.integers(0, 2 ** int(typ[4:]) - 1)
    size = int(typ[5:])
    return st.binary(min_size=size, max_size=size)


@pytest.mark.parametrize("function", SETTLEMENT_CALLS)
@given(data=st.data())
def test_calldata_arguments_encode_as_eth_abi_does(function: str, data: st.DataObject) -> None:
    types = list(call_arguments()[function])
    values = [data.draw(_value(t)) for t in types]
    assert encode(types, values) == eth_abi_encode(types, values)


@pytest.mark.parametrize(
    ("typ", "value"),
    [
        ("uint128", 2**128),
        ("uint40", -1),
        ("uint16", True),
        ("bytes3", b"USDX"),
        ("address", "0x1234"),
        ("(uint8,uint8)", (1,)),
        ("string", "no dynamic scalars"),
    ],
)
def test_out_of_range_values_are_refused(typ: str, value: Any) -> None:
    with pytest.raises(ValueError):
        encode([typ], [value])


EVENT_DATA = [["bytes3", "uint128"], ["address", "bytes3", "uint128", "uint128"], ["bytes3", "uint128", "address"]]


@pytest.mark.parametrize("types", EVENT_DATA)
@given(data=st.data())
def test_event_data_decodes_as_eth_abi_does(types: list[str], data: st.DataObject) -> None:
    values = [data.draw(_value(t)) for t in types]
    raw = eth_abi_encode(types, values)
    assert decode(types, raw) == eth_abi_decode(types, raw)


@pytest.mark.parametrize(
    ("typ", "word"),
    [("address", b"\1" + b"\0" * 31), ("uint128", (2**128).to_bytes(32, "big")), ("bytes3", b"USDX" + b"\0" * 28)],
)
def test_dirty_padding_is_refused(typ: str, word: bytes) -> None:
    with pytest.raises(ValueError):
        decode([typ], word)
    with pytest.raises(ValueError):
        decode([typ, typ], word)  # too short, too
