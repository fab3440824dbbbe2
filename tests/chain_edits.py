"""Editing the vault's storage behind its back (``anvil_setStorageAt``), for tests that must catch it."""

from __future__ import annotations

from collections.abc import Callable

from eth_abi.abi import encode
from eth_utils.crypto import keccak
from web3 import Web3

from settlement.chain.vault import Vault

Rpc = Callable[[str, list[object]], object]


def accounts_slot(rpc: Rpc, vault: Vault, participant: str, code: str) -> str:
    """The storage slot of ``_accounts[participant][code]``, found by probing the mapping's base slot."""
    address = vault.manifest.vault
    wanted = vault.balance(participant, code)
    packed = wanted.available | (wanted.escrowed << 112) | (wanted.flags << 224)
    for base in range(32):
        inner = keccak(encode(["address", "uint256"], [participant, base]))
        slot = "0x" + keccak(code.encode().ljust(32, b"\0") + inner).hex()
        if int(str(rpc("eth_getStorageAt", [address, slot, "latest"])), 16) == packed:
            return slot
    raise AssertionError("no storage slot holds the account")


def add_available(rpc: Rpc, vault: Vault, participant: str, code: str, amount: int) -> tuple[str, str]:
    """Raise a participant's available balance by ``amount`` without an event; returns (slot, original word)."""
    slot = accounts_slot(rpc, vault, participant, code)
    original = str(rpc("eth_getStorageAt", [vault.manifest.vault, slot, "latest"]))
    edited = int(original, 16) + amount
    rpc("anvil_setStorageAt", [vault.manifest.vault, slot, "0x" + edited.to_bytes(32, "big").hex()])
    return slot, original


def rpc_of(w3: Web3) -> Rpc:
    """A raw JSON-RPC call on ``w3``'s provider (for the ``anvil_*`` methods web3 does not wrap)."""

    def call(method: str, params: list[object]) -> object:
        answer = w3.provider.make_request(method, params)  # type: ignore[arg-type]
        assert "error" not in answer, answer
        return answer["result"]

    return call
