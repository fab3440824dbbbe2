"""Chain access for scripts, tests and the node: connect, load contracts, send, decode errors.

Nothing here assumes anvil: any EVM JSON-RPC endpoint will do. Transactions are signed
locally with the sender's key and sent raw; a revert is raised as the contracts' own
custom error class (see :mod:`settlement.errors`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from eth_abi.abi import decode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractCustomError, ContractLogicError, Web3RPCError
from web3.types import TxReceipt

from settlement.errors import (
    ContractError,
    InsufficientGasFundsError,
    RpcUnreachableError,
    TransactionFailedError,
    contract_error_class,
)

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS_DIR = ROOT / "artifacts"

CONTRACTS = ("SettlementVault", "SettlementAsset")
"""The contracts whose ABIs name Corridor's events and errors."""

RPC_TIMEOUT_S = 10
RECEIPT_TIMEOUT_S = 120
GAS_LIMIT_MARGIN = 1.25


def connect(rpc_url: str, timeout_s: float = RPC_TIMEOUT_S) -> Web3:
    """A connected Web3, or :class:`RpcUnreachableError` with the URL in the message."""
    w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": timeout_s}))
    try:
        w3.eth.chain_id  # noqa: B018 - a cheap call that proves the endpoint answers
    except Exception as exc:  # requests' and aiohttp's errors, malformed URLs, non-JSON
        raise RpcUnreachableError(
            f"no Ethereum JSON-RPC endpoint answers at {rpc_url} ({type(exc).__name__})"
        ) from None
    return w3


@cache
def artifact(name: str) -> dict[str, Any]:
    path = ARTIFACTS_DIR / f"{name}.json"
    if not path.exists():
        from contracts.build import build

        build()
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def contract(w3: Web3, name: str, address: str) -> Contract:
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=artifact(name)["abi"])


@cache
def _error_table() -> dict[bytes, tuple[str, list[str], list[str]]]:
    table: dict[bytes, tuple[str, list[str], list[str]]] = {}
    for name in CONTRACTS:
        for item in artifact(name)["abi"]:
            if item["type"] != "error":
                continue
            types = [abi_type(i) for i in item["inputs"]]
            selector = function_signature_to_4byte_selector(f"{item['name']}({','.join(types)})")
            table[selector] = (item["name"], [i["name"] for i in item["inputs"]], types)
    return table


def interface(name: str, address: str, chain_id: int) -> dict[str, Any]:
    """A deployed contract's ABI, with each event's topic and each error's selector worked out,
    for banks and auditors who read the chain with their own tools."""
    abi = artifact(name)["abi"]

    def signature(item: dict[str, Any]) -> str:
        return f"{item['name']}({','.join(abi_type(i) for i in item['inputs'])})"

    return {
        "contract": name,
        "address": to_checksum_address(address),
        "chain_id": chain_id,
        "events": [
            {"name": i["name"], "signature": signature(i), "topic0": "0x" + keccak(text=signature(i)).hex()}
            for i in abi
            if i["type"] == "event"
        ],
        "errors": [
            {
                "name": i["name"],
                "signature": signature(i),
                "selector": "0x" + function_signature_to_4byte_selector(signature(i)).hex(),
            }
            for i in abi
            if i["type"] == "error"
        ],
        "abi": abi,
    }


def abi_type(item: dict[str, Any]) -> str:
    """The canonical type of an ABI input (tuples spelled out), as selectors and topics hash it."""
    if item["type"].startswith("tuple"):
        inner = ",".join(abi_type(c) for c in item["components"])
        return f"({inner}){item['type'][5:]}"
    return str(item["type"])


def decode_revert(data: bytes | str) -> ContractError | None:
    """The custom error in revert ``data``, or None when it is not one of ours."""
    raw = bytes.fromhex(data[2:] if data.startswith("0x") else data) if isinstance(data, str) else data
    entry = _error_table().get(raw[:4])
    if entry is None:
        return None
    name, names, types = entry
    values = [
        to_checksum_address(v) if t == "address" else v for t, v in zip(types, decode(types, raw[4:]), strict=True)
    ]
    return contract_error_class(name)(dict(zip(names, values, strict=True)))


def raise_decoded(exc: Exception) -> None:
    """Re-raise a web3 revert as our contract error class when we know the error."""
    data = getattr(exc, "data", None)
    if isinstance(exc, ContractCustomError | ContractLogicError) and data:
        decoded = decode_revert(data if isinstance(data, str | bytes) else str(data))
        if decoded is not None:
            raise decoded from None
    raise exc


@dataclass
class Sender:
    """Signs and sends transactions from one key, tracking its nonce locally.

    For scripts and tests: one transaction at a time, each waited for. The node's
    concurrent sender (fee bumps, lost answers) builds on the same signing path.
    """

    w3: Web3
    account: LocalAccount
    gas_price_wei: int | None = None

    @classmethod
    def from_key(cls, w3: Web3, private_key: str) -> Sender:
        return cls(w3, Account.from_key(private_key))

    @property
    def address(self) -> str:
        return str(self.account.address)

    def require_funds(self, role: str) -> None:
        if self.w3.eth.get_balance(self.account.address) == 0:
            raise InsufficientGasFundsError(
                f"the {role} key {self.address} has no ether on chain {self.w3.eth.chain_id} "
                "to pay for gas: fund it first"
            )

    def transact(self, fn: ContractFunction, gas: int | None = None) -> TxReceipt:
        """Send ``fn`` as a transaction and wait for its receipt; raise on revert."""
        try:
            tx = fn.build_transaction(self._base(gas))  # type: ignore[arg-type]
        except (ContractCustomError, ContractLogicError) as exc:
            raise_decoded(exc)
        return self.send(tx)

    def deploy(self, name: str, *args: Any) -> TxReceipt:
        factory = self.w3.eth.contract(abi=artifact(name)["abi"], bytecode=artifact(name)["bytecode"])
        try:
            tx = factory.constructor(*args).build_transaction(self._base(None))
        except (ContractCustomError, ContractLogicError) as exc:
            raise_decoded(exc)
        return self.send(tx)

    def send(self, tx: dict[str, Any] | Any) -> TxReceipt:
        signed = self.account.sign_transaction(tx)
        try:
            tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        except Web3RPCError as exc:
            if "insufficient funds" in str(exc).lower():
                raise InsufficientGasFundsError(
                    f"{self.address} cannot pay for gas on chain {self.w3.eth.chain_id}"
                ) from None
            raise
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT_S)
        if receipt["status"] != 1:
            self._raise_revert(tx, receipt)
        return receipt

    def _base(self, gas: int | None) -> dict[str, Any]:
        base: dict[str, Any] = {
            "from": self.account.address,
            "nonce": self.w3.eth.get_transaction_count(self.account.address, "pending"),
            "chainId": self.w3.eth.chain_id,
        }
        if gas is not None:
            base["gas"] = gas
        if self.gas_price_wei is not None:
            base["gasPrice"] = self.gas_price_wei
        return base

    def _raise_revert(self, tx: dict[str, Any], receipt: TxReceipt) -> None:
        call = {k: tx[k] for k in ("from", "to", "data", "value") if k in tx}
        try:
            self.w3.eth.call(call, receipt["blockNumber"] - 1)  # type: ignore[arg-type]
        except (ContractCustomError, ContractLogicError) as exc:
            raise_decoded(exc)
        raise TransactionFailedError(f"transaction {receipt['transactionHash'].hex()} reverted")
