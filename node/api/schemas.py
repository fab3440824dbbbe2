"""Request and response bodies of the bank API (pydantic), with the examples /docs shows."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from settlement.lifecycle import TransferStatus
from settlement.money import AMOUNT_MINOR_MAX

TRANSFER_BATCH_MAX = 200
DETAILS_LENGTH_MAX = 8_192
_HEX32 = re.compile(r"^0x[0-9a-fA-F]{64}$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def _integer(value: Any) -> Any:
    """Integers in minor units, as JSON numbers or digit strings (for clients without big ints)."""
    if isinstance(value, bool):
        raise ValueError("expected an integer, not a boolean")
    if isinstance(value, str):
        if not value.isdigit():
            raise ValueError("expected a non-negative integer (minor units) as a number or a string of digits")
        return int(value)
    if isinstance(value, float):
        raise ValueError("amounts are integers in minor units, never floats")
    return value


def _hex32(value: Any) -> Any:
    if not isinstance(value, str) or not _HEX32.match(value):
        raise ValueError("expected 32 bytes as 0x followed by 64 hex digits")
    return value.lower()


def _address(value: Any) -> Any:
    if not isinstance(value, str) or not _ADDRESS.match(value):
        raise ValueError("expected an address: 0x followed by 40 hex digits")
    return value


def _currency(value: Any) -> Any:
    if not isinstance(value, str) or not re.match(r"^[A-Z]{3}$", value):
        raise ValueError("expected an ISO 4217 code: three upper-case letters")
    return value


MinorAmount = Annotated[int, BeforeValidator(_integer), Field(ge=1, le=AMOUNT_MINOR_MAX)]
MinorAmountOrZero = Annotated[int, BeforeValidator(_integer), Field(ge=0, le=AMOUNT_MINOR_MAX)]
Nonce = Annotated[int, BeforeValidator(_integer), Field(ge=0, le=2**256 - 1)]
Hex32 = Annotated[str, BeforeValidator(_hex32)]
Address = Annotated[str, BeforeValidator(_address)]
CurrencyCode = Annotated[str, BeforeValidator(_currency)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InstructionIn(_Body):
    """The EIP-712 ``Instruction`` the debtor bank signed, field for field."""

    id: uuid.UUID = Field(description="the UETR: a UUID the bank chooses; it is also the transfer's id")
    nonce: Nonce = Field(description="the bank's replay nonce (unordered: any unused number)")
    debtor: Address = Field(description="the debtor bank's registered address (the signer)")
    creditor: Address = Field(description="the creditor bank's registered address")
    sell_currency: CurrencyCode
    sell_amount: MinorAmount = Field(description="minor units of sell_currency, fee included")
    buy_currency: CurrencyCode
    min_buy_amount: MinorAmountOrZero = Field(description="the least the creditor may receive, minor units")
    deadline: int = Field(ge=0, lt=2**40, description="unix seconds after which the instruction cannot settle")
    details_hash: Hex32 = Field(description="keccak-256 of the beneficiary and remittance details (kept off chain)")


class SignatureIn(_Body):
    """EIP-2098 compact signature."""

    r: Hex32
    vs: Hex32


class TransferCreate(_Body):
    instruction: InstructionIn
    signature: SignatureIn
    quote_id: Hex32 | None = Field(None, description="a quote from POST /v1/quotes to settle at")
    details: str | None = Field(
        None,
        max_length=DETAILS_LENGTH_MAX,
        description=(
            "the beneficiary and remittance details, as the exact JSON text whose keccak-256 is "
            "`instruction.details_hash` (so the node can check them against the signature). An object, e.g. "
            '`{"beneficiary": {"name", "account", "country"}, "ordering_customer": {"name", "country"}, '
            '"remittance": "..."}`; the names and countries are screened against the sanctions list, and the '
            "beneficiary's account tells a new beneficiary from one paid before. They stay in the node's store, "
            "never on chain."
        ),
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "instruction": {
                        "id": "6f1c8a4e-2b7d-4c1e-9a53-0d3f2e8b7c61",
                        "nonce": 17,
                        "debtor": "0x976EA74026E726554dB657fA54763abd0C3a0aa9",
                        "creditor": "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955",
                        "sell_currency": "USD",
                        "sell_amount": 25000000,
                        "buy_currency": "EUR",
                        "min_buy_amount": 22000000,
                        "deadline": 1795430000,
                        "details_hash": "0x" + "ab" * 32,
                    },
                    "signature": {"r": "0x" + "11" * 32, "vs": "0x" + "22" * 32},
                }
            ]
        },
    )


class ChainReference(BaseModel):
    """Where on chain a step happened: the event's transaction, block and log index."""

    tx_hash: str | None
    block_number: int | None
    log_index: int | None
    confirmations: int | None = Field(None, description="blocks on top of it, its own included, as the node saw")


class TransferEventPublic(BaseModel):
    status: TransferStatus
    reason: str
    code: str = Field("", description="machine-readable reason, e.g. insufficient_funds or InstructionNonceUsed")
    at: dt.datetime
    chain: ChainReference | None = None


class ReviewPublic(BaseModel):
    """Why a transfer was held for the operator's review, and what the operator decided."""

    state: str = Field(description="pending (escrowed, not settled until approved), approved or rejected")
    code: str = Field(description="the rule that held it: review_amount or review_screening")
    reason: str
    reviewed_at: dt.datetime | None = None


class TransferPublic(BaseModel):
    id: str
    status: TransferStatus
    status_reason: str
    status_code: str = Field("", description="machine-readable reason for the status (empty when none)")
    debtor: str
    creditor: str
    sell_currency: str
    sell_amount: int
    buy_currency: str
    min_buy_amount: int
    buy_amount: int | None
    fee: int | None
    deadline: int
    quote_id: str | None
    review: ReviewPublic | None = Field(None, description="set when the risk rules held it for review")
    created_at: dt.datetime
    updated_at: dt.datetime
    history: list[TransferEventPublic]


class TransferBatchCreate(_Body):
    """Several signed instructions in one request (as an ISO 20022 pacs.008 carries several)."""

    transfers: list[TransferCreate] = Field(min_length=1, max_length=TRANSFER_BATCH_MAX)


class TransferBatchItem(BaseModel):
    id: str | None = Field(description="the UETR, when the item could be read")
    status_code: int = Field(description="202 when accepted (RECEIVED), else the 4xx it would have had alone")
    status: TransferStatus | None = None
    error: dict[str, Any] | None = Field(None, description="{code, message, details} when refused")


class TransferBatchResult(BaseModel):
    accepted: int
    refused: int
    results: list[TransferBatchItem] = Field(description="one per submitted item, in order")


class TransferPage(BaseModel):
    data: list[TransferPublic]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last page")


class QuoteCreate(_Body):
    sell_currency: CurrencyCode
    buy_currency: CurrencyCode
    sell_amount: str | None = Field(None, description='sell exactly this, in major units ("250000.00")')
    buy_amount: str | None = Field(None, description='or: the creditor receives exactly this ("1000000")')

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"sell_currency": "USD", "buy_currency": "EUR", "sell_amount": "250000.00"}]},
    )


class BankPublic(BaseModel):
    name: str
    bic: str
    country: str
    address: str
    kind: str
    currencies: list[str]

    @classmethod
    def of(cls, bank: Any) -> BankPublic:
        """The directory entry of a stored bank (``node.store.models.Bank``)."""
        return cls(name=bank.name, bic=bank.bic, country=bank.country, address=bank.address, kind=bank.kind,
                   currencies=list(bank.currencies))  # fmt: skip


class BalancePublic(BaseModel):
    currency: str
    available: int
    escrowed: int
    available_decimal: str
    escrowed_decimal: str
