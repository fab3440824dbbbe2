"""The chain, for everything that reads or writes it: the one JSON-RPC client (:mod:`.rpc`), the
contracts' ABIs, events and errors from the build artifacts (:mod:`.contracts`, :mod:`.events`),
the vault's calls (:mod:`.vault`), deployment and keys."""

from settlement.chain.contracts import (
    RPC_TIMEOUT_S,
    Sender,
    artifact,
    connect,
    contract,
    decode_revert,
    interface,
    raise_decoded,
)

__all__ = [
    "RPC_TIMEOUT_S",
    "Sender",
    "artifact",
    "connect",
    "contract",
    "decode_revert",
    "interface",
    "raise_decoded",
]
