"""What a bank needs to sign instructions with nothing but an EIP-712 library: the published
description of Corridor's typed data (the node serves it at ``/v1/network/typed-data``).

It gives the domain, the types as wallets and eth-account take them, how each field of the
API's JSON becomes a member of the signed struct, the bounds the API and the vault keep, how
the details are hashed and the signature is sent, and a worked example computed here, for
this network's domain, so that a client can check its own encoder against it offline.
"""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_utils.crypto import keccak

from settlement.eip712 import (
    EIP712_DOMAIN_TYPES,
    INSTRUCTION_TYPE,
    INSTRUCTION_TYPEHASH,
    QUOTE_TYPE,
    QUOTE_TYPEHASH,
    Domain,
    Instruction,
    digest,
    sign,
    struct_types,
    typed_data,
    uuid_to_id,
)
from settlement.money import AMOUNT_MINOR_MAX

UINT128_MAX = 2**128 - 1
UINT40_MAX = 2**40 - 1
MIN_BUY_AMOUNT_MAX = UINT128_MAX
"""A bound, not an amount anyone holds: the whole ``uint128`` (one no rate can meet is refused at intake)."""

EXAMPLE_KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
"""The key of eth-account's documentation: public, for the worked example only."""

EXAMPLE_DETAILS = '{"beneficiary": {"account": "DE89370400440532013000", "country": "DE", "name": "Erika Mustermann"}}'

NO_DETAILS = "{}"
"""The details text of an instruction that carries none (what the Corridor client hashes then)."""

FIELDS: list[dict[str, Any]] = [
    {
        "member": "id",
        "type": "bytes32",
        "api_field": "instruction.id",
        "encoding": "the UETR (a UUID): its 16 bytes, then 16 zero bytes",
        "example": {
            "api": "6f1c8a4e-2b7d-4c1e-9a53-0d3f2e8b7c61",
            "signed": "0x6f1c8a4e2b7d4c1e9a530d3f2e8b7c6100000000000000000000000000000000",
        },
    },
    {
        "member": "nonce",
        "type": "uint256",
        "api_field": "instruction.nonce",
        "minimum": 0,
        "maximum": 2**256 - 1,
        "encoding": "an unordered replay nonce: any number the bank has not used (GET /v1/me gives a free one); JSON "
        "number or string of digits",
        "example": {"api": 17, "signed": 17},
    },
    {
        "member": "debtor",
        "type": "address",
        "api_field": "instruction.debtor",
        "encoding": "your bank's registered address (the signer); any letter case in the API",
    },
    {
        "member": "creditor",
        "type": "address",
        "api_field": "instruction.creditor",
        "encoding": "the creditor bank's address from GET /v1/banks",
    },
    {
        "member": "sellCurrency",
        "type": "bytes3",
        "api_field": "instruction.sell_currency",
        "encoding": "the ISO 4217 code's three ASCII bytes",
        "example": {"api": "USD", "signed": "0x555344"},
    },
    {
        "member": "sellAmount",
        "type": "uint128",
        "api_field": "instruction.sell_amount",
        "minimum": 1,
        "maximum": AMOUNT_MINOR_MAX,
        "encoding": "minor units of the sell currency (its ISO 4217 exponent: USD 2, JPY 0), fee included; at most "
        "2^112-1, the largest balance the vault books (250000.00 USD is 25000000)",
        "example": {"api": 25000000, "signed": 25000000},
    },
    {
        "member": "buyCurrency",
        "type": "bytes3",
        "api_field": "instruction.buy_currency",
        "encoding": "the ISO 4217 code's three ASCII bytes",
        "example": {"api": "EUR", "signed": "0x455552"},
    },
    {
        "member": "minBuyAmount",
        "type": "uint128",
        "api_field": "instruction.min_buy_amount",
        "minimum": 0,
        "maximum": MIN_BUY_AMOUNT_MAX,
        "encoding": "the least the creditor may receive, minor units of the buy currency (your slippage bound; 0 for "
        "none)",
    },
    {
        "member": "deadline",
        "type": "uint40",
        "api_field": "instruction.deadline",
        "minimum": 0,
        "maximum": UINT40_MAX,
        "encoding": "unix seconds after which it can no longer settle; the node takes deadlines "
        "between its minimum and maximum from now",
    },
    {
        "member": "detailsHash",
        "type": "bytes32",
        "api_field": "instruction.details_hash",
        "encoding": "keccak-256 of the UTF-8 bytes of the details text (see details_hash)",
    },
]


def _hex(value: Any) -> Any:
    return "0x" + value.hex() if isinstance(value, bytes) else value


def example(domain: Domain) -> dict[str, Any]:
    """One instruction signed with :data:`EXAMPLE_KEY` in ``domain``, every step shown."""
    signer = Account.from_key(EXAMPLE_KEY).address
    uetr = "6f1c8a4e-2b7d-4c1e-9a53-0d3f2e8b7c61"
    instruction = Instruction(
        id=uuid_to_id(uetr),
        nonce=17,
        debtor=signer,
        creditor="0x14dC79964da2C08b23698B3D3cc7Ca32193d9955",
        sell_currency=b"USD",
        sell_amount=25_000_000,
        buy_currency=b"EUR",
        min_buy_amount=22_000_000,
        deadline=1_795_430_000,
        details_hash=keccak(text=EXAMPLE_DETAILS),
    )
    signature = sign(domain, instruction, EXAMPLE_KEY)
    document = typed_data(domain, instruction)
    document["message"] = {k: _hex(v) for k, v in document["message"].items()}
    return {
        "private_key": EXAMPLE_KEY,
        "signer": signer,
        "api_body": {
            "instruction": {
                "id": uetr,
                "nonce": 17,
                "debtor": signer,
                "creditor": instruction.creditor,
                "sell_currency": "USD",
                "sell_amount": 25_000_000,
                "buy_currency": "EUR",
                "min_buy_amount": 22_000_000,
                "deadline": 1_795_430_000,
                "details_hash": _hex(instruction.details_hash),
            },
            "signature": {"r": _hex(signature.r), "vs": _hex(signature.vs)},
            "details": EXAMPLE_DETAILS,
        },
        "typed_data": document,
        "struct_hash": _hex(instruction.struct_hash()),
        "digest": _hex(digest(domain, instruction.struct_hash())),
    }


def describe(domain: Domain) -> dict[str, Any]:
    """The whole published description for ``domain`` (JSON-ready)."""
    return {
        "domain": domain.as_dict(),
        "domain_separator": _hex(domain.separator()),
        "types": {
            "EIP712Domain": EIP712_DOMAIN_TYPES,
            "Instruction": struct_types(INSTRUCTION_TYPE),
            "Quote": struct_types(QUOTE_TYPE),
        },
        "primary_types": {
            "Instruction": "what a debtor bank signs for each payment (POST /v1/transfers)",
            "Quote": "what the node's oracle key signs for each quote (POST /v1/quotes); banks may verify it",
        },
        "encode_type": {"Instruction": INSTRUCTION_TYPE, "Quote": QUOTE_TYPE},
        "type_hashes": {"Instruction": _hex(INSTRUCTION_TYPEHASH), "Quote": _hex(QUOTE_TYPEHASH)},
        "instruction_fields": FIELDS,
        "details_hash": {
            "rule": "keccak-256 of the exact UTF-8 bytes of the `details` text sent with the transfer; the node "
            "recomputes it and refuses a mismatch (details_mismatch). Canonical text: the JSON object with sorted "
            "keys, ', ' and ': ' as separators and non-ASCII escaped (Python's json.dumps(details, sort_keys=True)). "
            "Without details, the hash of '{}'.",
            "no_details_text": NO_DETAILS,
            "no_details_hash": _hex(keccak(text=NO_DETAILS)),
            "example_text": EXAMPLE_DETAILS,
            "example_hash": _hex(keccak(text=EXAMPLE_DETAILS)),
        },
        "signature": {
            "scheme": "EIP-712 (eth_signTypedData_v4) by the debtor bank's key, sent in EIP-2098 compact form",
            "r": "0x + 64 hex digits: the signature's r",
            "vs": "0x + 64 hex digits: s with (v - 27) in its top bit; s must be in the lower half of the curve "
            "order (low-s, as eth-account produces)",
        },
        "example": example(domain),
    }
