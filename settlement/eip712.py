"""EIP-712 typed data of the contracts: the debtor bank's Instruction and the oracle's Quote.

The struct hashes are computed here directly (``keccak256(typehash ‖ abi.encode(fields))``,
every field a static word), which is what ``contracts/libraries/TypedData.sol`` does and what
eth-account's generic encoder yields (a unit test holds the three equal). The domain binds
the chain id and the vault's address, so a signature is good on one deployment only.

Signatures travel in the compact EIP-2098 form ``(r, vs)`` the contracts take; signatures
with a high ``s`` are never produced and are rejected by the contracts.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any

from eth_keys.datatypes import PrivateKey
from eth_keys.datatypes import Signature as KeysSignature
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from settlement.chain._abi import encode

DOMAIN_NAME = "Corridor Settlement"
DOMAIN_VERSION = "1"

INSTRUCTION_TYPE = (
    "Instruction(bytes32 id,uint256 nonce,address debtor,address creditor,bytes3 sellCurrency,"
    "uint128 sellAmount,bytes3 buyCurrency,uint128 minBuyAmount,uint40 deadline,bytes32 detailsHash)"
)
QUOTE_TYPE = (
    "Quote(bytes3 sellCurrency,bytes3 buyCurrency,uint128 rate,uint16 feeBps,address liquidityProvider,uint40 expiry)"
)
INSTRUCTION_TYPEHASH = keccak(text=INSTRUCTION_TYPE)
QUOTE_TYPEHASH = keccak(text=QUOTE_TYPE)
_DOMAIN_TYPEHASH = keccak(text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
_INSTRUCTION_ABI = [
    "bytes32",
    "uint256",
    "address",
    "address",
    "bytes3",
    "uint128",
    "bytes3",
    "uint128",
    "uint40",
    "bytes32",
]
TERMS_TYPE = (
    "Terms(bytes32 id,address debtor,address creditor,bytes3 sellCurrency,uint128 sellAmount,"
    "bytes3 buyCurrency,uint128 minBuyAmount,uint40 deadline)"
)
TERMS_TYPEHASH = keccak(text=TERMS_TYPE)
_TERMS_ABI = ["bytes32", "address", "address", "bytes3", "uint128", "bytes3", "uint128", "uint40"]
_QUOTE_ABI = ["bytes3", "bytes3", "uint128", "uint16", "address", "uint40"]
_SECP256K1_HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0


@dataclass(frozen=True, slots=True)
class Domain:
    chain_id: int
    verifying_contract: str

    def separator(self) -> bytes:
        return _separator(self.chain_id, self.verifying_contract)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": self.chain_id,
            "verifyingContract": to_checksum_address(self.verifying_contract),
        }


@lru_cache(maxsize=64)
def _separator(chain_id: int, verifying_contract: str) -> bytes:
    """The domain separator (computed once per deployment: it is in every digest)."""
    return keccak(
        encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [
                _DOMAIN_TYPEHASH,
                keccak(text=DOMAIN_NAME),
                keccak(text=DOMAIN_VERSION),
                chain_id,
                verifying_contract,
            ],
        )
    )


@dataclass(frozen=True, slots=True)
class Instruction:
    """A payment instruction, field for field as the contract's ``Instruction`` struct."""

    id: bytes
    nonce: int
    debtor: str
    creditor: str
    sell_currency: bytes
    sell_amount: int
    buy_currency: bytes
    min_buy_amount: int
    deadline: int
    details_hash: bytes

    def struct_hash(self) -> bytes:
        return keccak(INSTRUCTION_TYPEHASH + encode(_INSTRUCTION_ABI, list(self.as_tuple())))

    def as_tuple(self) -> tuple[Any, ...]:
        """The ABI tuple for contract calls."""
        return _values(self)

    def message(self) -> dict[str, Any]:
        """The EIP-712 message as a wallet shows it (field names as in the type string)."""
        return dict(zip(_field_names(INSTRUCTION_TYPE), self.as_tuple(), strict=True))

    def terms(self) -> Terms:
        """What an escrow of this instruction commits to, and settlement resupplies."""
        return Terms(
            self.id,
            self.debtor,
            self.creditor,
            self.sell_currency,
            self.sell_amount,
            self.buy_currency,
            self.min_buy_amount,
            self.deadline,
        )


@dataclass(frozen=True, slots=True)
class Terms:
    """The eight fields of an instruction that an escrow commits to (the contract's ``Terms``)."""

    id: bytes
    debtor: str
    creditor: str
    sell_currency: bytes
    sell_amount: int
    buy_currency: bytes
    min_buy_amount: int
    deadline: int

    def leaf(self) -> bytes:
        """The escrow commitment of a batch position."""
        return keccak(TERMS_TYPEHASH + encode(_TERMS_ABI, list(self.as_tuple())))

    def as_tuple(self) -> tuple[Any, ...]:
        return _values(self)


@dataclass(frozen=True, slots=True)
class Quote:
    """An FX quote, field for field as the contract's ``Quote`` struct.

    A quote is identified by its struct hash (:meth:`struct_hash`), as in the contract's errors.
    """

    sell_currency: bytes
    buy_currency: bytes
    rate: int
    fee_bps: int
    liquidity_provider: str
    expiry: int

    def struct_hash(self) -> bytes:
        return _quote_hash(self)

    def as_tuple(self) -> tuple[Any, ...]:
        return _values(self)

    def message(self) -> dict[str, Any]:
        return dict(zip(_field_names(QUOTE_TYPE), self.as_tuple(), strict=True))


@lru_cache(maxsize=4096)
def _quote_hash(quote: Quote) -> bytes:
    """Cached: a batch settles hundreds of transfers at the few quotes of its pairs and second."""
    return keccak(QUOTE_TYPEHASH + encode(_QUOTE_ABI, list(quote.as_tuple())))


def _values(item: Any) -> tuple[Any, ...]:
    """The fields in order (``dataclasses.astuple`` deep-copies each one; these are immutable)."""
    return tuple(getattr(item, f.name) for f in fields(item))


@dataclass(frozen=True, slots=True)
class CompactSignature:
    """EIP-2098 signature: ``vs`` is ``s`` with ``v - 27`` in its top bit."""

    r: bytes
    vs: bytes

    def as_tuple(self) -> tuple[bytes, bytes]:
        return (self.r, self.vs)

    @classmethod
    def from_rsv(cls, r: int, s: int, v: int) -> CompactSignature:
        if s > _SECP256K1_HALF_N:
            raise ValueError("high-s signature: not canonical")
        vs = s | ((v - 27) << 255)
        return cls(r.to_bytes(32, "big"), vs.to_bytes(32, "big"))

    def rsv(self) -> tuple[int, int, int]:
        vs = int.from_bytes(self.vs, "big")
        return int.from_bytes(self.r, "big"), vs & ((1 << 255) - 1), 27 + (vs >> 255)


def digest(domain: Domain, struct_hash: bytes) -> bytes:
    """``keccak256("\\x19\\x01" ‖ domainSeparator ‖ structHash)``."""
    return keccak(b"\x19\x01" + domain.separator() + struct_hash)


def sign(domain: Domain, item: Instruction | Quote, private_key: str | bytes | PrivateKey) -> CompactSignature:
    """Sign ``item``'s EIP-712 digest. Pass an ``eth_keys`` ``PrivateKey`` to sign often: from
    a raw key the public key is derived anew on every call."""
    key = private_key if isinstance(private_key, PrivateKey) else PrivateKey(_raw_key(private_key))
    sig = key.sign_msg_hash(digest(domain, item.struct_hash()))
    return CompactSignature.from_rsv(sig.r, sig.s, sig.v + 27)


def _raw_key(private_key: str | bytes) -> bytes:
    if isinstance(private_key, bytes):
        return private_key
    return bytes.fromhex(private_key.removeprefix("0x"))


def recover(domain: Domain, item: Instruction | Quote, signature: CompactSignature) -> str:
    """The address that signed ``item`` in ``domain`` (raises ``ValueError`` if malformed)."""
    r, s, v = signature.rsv()
    if s > _SECP256K1_HALF_N:
        raise ValueError("high-s signature: not canonical")
    sig = KeysSignature(vrs=(v - 27, r, s))
    public = sig.recover_public_key_from_msg_hash(digest(domain, item.struct_hash()))
    return public.to_checksum_address()


checksum_address = lru_cache(maxsize=4096)(to_checksum_address)
"""The EIP-55 form of an address, cached: a few banks send thousands of instructions, each naming two."""


def new_uetr() -> bytes:
    """A fresh UETR (UUID v4) as the 32-byte, left-aligned ``bytes32`` id."""
    return uuid_to_id(uuid.uuid4())


def uuid_to_id(value: uuid.UUID | str) -> bytes:
    u = value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    return u.bytes + b"\0" * 16


def id_to_uuid(value: bytes) -> uuid.UUID:
    if len(value) != 32 or value[16:] != b"\0" * 16:
        raise ValueError("not a UETR id: expected 16 bytes of UUID and 16 zero bytes")
    return uuid.UUID(bytes=value[:16])


EIP712_DOMAIN_TYPES = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


def struct_types(type_string: str) -> list[dict[str, str]]:
    """A struct's members as EIP-712 ``types`` lists them (``[{"name", "type"}]``), from its type string."""
    inner = type_string[type_string.index("(") + 1 : -1]
    return [{"name": f.split(" ")[1], "type": f.split(" ")[0]} for f in inner.split(",")]


def typed_data(domain: Domain, item: Instruction | Quote) -> dict[str, Any]:
    """The full EIP-712 document for wallets and eth-account's generic encoder."""
    type_string = INSTRUCTION_TYPE if isinstance(item, Instruction) else QUOTE_TYPE
    name = type_string.split("(")[0]
    return {
        "types": {"EIP712Domain": EIP712_DOMAIN_TYPES, name: struct_types(type_string)},
        "primaryType": name,
        "domain": domain.as_dict(),
        "message": item.message(),
    }


def _field_names(type_string: str) -> list[str]:
    return [member["name"] for member in struct_types(type_string)]


def uetr_of(raw: bytes) -> str:
    """The transfer id (UETR) of a vault ``bytes32`` instruction id; hex if it is not a UETR."""
    try:
        return str(id_to_uuid(bytes(raw)))
    except ValueError:
        return "0x" + bytes(raw).hex()
