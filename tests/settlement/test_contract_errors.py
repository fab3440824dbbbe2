"""The vault's custom errors the node acts on are named classes, decoded from revert data."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi import encode
from eth_utils.abi import function_signature_to_4byte_selector

from settlement.chain import artifact, decode_revert
from settlement.chain.contracts import abi_type
from settlement.errors import (
    ContractError,
    InstructionNonceUsed,
    InsufficientAvailable,
    ParticipantNotUsable,
    SlotOccupied,
)

HANDLED = (SlotOccupied, InstructionNonceUsed, ParticipantNotUsable, InsufficientAvailable)


def _sample(typ: str) -> Any:
    if typ == "address":
        return "0x" + "11" * 20
    if typ.startswith("bytes"):
        return b"USD".ljust(int(typ[5:]), b"\0")
    return 7


@pytest.mark.parametrize("cls", HANDLED, ids=lambda c: c.error_name)
def test_a_handled_error_is_the_vaults_own_and_decodes_to_its_class(cls: type[ContractError]) -> None:
    errors = {i["name"]: i for i in artifact("SettlementVault")["abi"] if i["type"] == "error"}
    assert cls.error_name in errors, f"the vault has no error {cls.error_name}: the node would never see it"
    types = [abi_type(i) for i in errors[cls.error_name]["inputs"]]
    selector = function_signature_to_4byte_selector(f"{cls.error_name}({','.join(types)})")
    decoded = decode_revert(selector + encode(types, [_sample(t) for t in types]))
    assert type(decoded) is cls
    assert list(decoded.fields) == [i["name"] for i in errors[cls.error_name]["inputs"]]
