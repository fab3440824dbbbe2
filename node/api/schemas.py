"""Request and response bodies of the bank API (pydantic), with the examples /docs shows."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    WithJsonSchema,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from settlement.lifecycle import TransferStatus
from settlement.money import AMOUNT_MINOR_MAX
from settlement.typed_data import MIN_BUY_AMOUNT_MAX

TRANSFER_BATCH_MAX = 200
DETAILS_LENGTH_MAX = 8_192


@dataclass(frozen=True, slots=True)
class _Pattern:
    """A string checked against ``pattern``, which the OpenAPI document publishes as it is."""

    pattern: str
    problem: str
    lower: bool = False

    def parse(self, value: Any) -> Any:
        if not isinstance(value, str) or not re.fullmatch(self.pattern, value):
            raise ValueError(self.problem)
        return value.lower() if self.lower else value

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_before_validator_function(self.parse, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return {"type": "string", "pattern": self.pattern}


@dataclass(frozen=True, slots=True)
class _Integer:
    """An integer (minor units, a nonce) as a JSON number, or as a string of digits for clients
    without big integers. The string form is bounded by its length, so that every string the
    published pattern admits is in range: larger values go as JSON numbers."""

    minimum: int
    maximum: int

    @property
    def digits(self) -> int:
        return len(str(self.maximum)) - 1

    @property
    def pattern(self) -> str:
        more = f"[0-9]{{0,{self.digits - 1}}}"
        return f"^[1-9]{more}$" if self.minimum else f"^(0|[1-9]{more})$"

    def parse(self, value: Any) -> Any:
        if isinstance(value, bool | float):
            raise ValueError("expected an integer (minor units), never a float or a boolean")
        if isinstance(value, Decimal):  # a JSON number written with a fraction or an exponent (JsonRoute)
            if value != value.to_integral_value():
                raise ValueError("expected an integer (minor units), not a fraction")
            return int(value)
        if isinstance(value, str):
            if not re.fullmatch(self.pattern, value):
                raise ValueError(
                    f"expected an integer as a JSON number, or as a string of at most {self.digits} digits"
                )
            return int(value)
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        bounded = core_schema.int_schema(ge=self.minimum, le=self.maximum)
        return core_schema.no_info_before_validator_function(self.parse, bounded)

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        number = {"type": "integer", "minimum": self.minimum, "maximum": self.maximum}
        return {"anyOf": [number, {"type": "string", "pattern": self.pattern}]}


@dataclass(frozen=True, slots=True)
class _Rfc3339:
    """A time as RFC 3339 has it (``2026-12-02T06:39:17Z``, an offset required), and nothing else:
    not a number of seconds, not a date alone."""

    def parse(self, value: Any) -> Any:
        found = isinstance(value, str) and _RFC3339.fullmatch(value)
        if not found:
            raise ValueError("expected an RFC 3339 time with its offset, e.g. 2026-12-02T06:39:17Z")
        date, time, fraction, offset = found.groups()
        # Python reads at most microseconds, and no leap second (one is read as the second before it).
        time = time[:6] + min(time[6:], "59")
        offset = "+00:00" if offset in ("Z", "z") else offset
        try:
            return dt.datetime.fromisoformat(f"{date}T{time}{(fraction or '')[:7]}{offset}")
        except ValueError as exc:
            raise ValueError(f"not a time: {exc}") from None

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_before_validator_function(self.parse, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return {"type": "string", "format": "date-time"}


_RFC3339 = re.compile(r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
Rfc3339 = Annotated[dt.datetime, _Rfc3339()]

DEADLINE_END = 2**40
"""Deadlines are ``uint40`` seconds: below this."""
EXACT_BOUNDS = frozenset({AMOUNT_MINOR_MAX, MIN_BUY_AMOUNT_MAX, 2**256 - 1, DEADLINE_END - 1})
"""The integer bounds of the request bodies, beyond what a double holds exactly (see node.api.openapi.finish)."""

UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"

MinorAmount = Annotated[int, _Integer(1, AMOUNT_MINOR_MAX)]
MinBuyAmount = Annotated[int, _Integer(0, MIN_BUY_AMOUNT_MAX)]
Nonce = Annotated[int, _Integer(0, 2**256 - 1)]
Deadline = Annotated[int, _Integer(0, DEADLINE_END - 1)]
Hex32 = Annotated[str, _Pattern("^0x[0-9a-fA-F]{64}$", "expected 32 bytes as 0x followed by 64 hex digits", lower=True)]
Address = Annotated[str, _Pattern("^0x[0-9a-fA-F]{40}$", "expected an address: 0x followed by 40 hex digits")]
CurrencyCode = Annotated[str, _Pattern("^[A-Z]{3}$", "expected an ISO 4217 code: three upper-case letters")]
Uetr = Annotated[uuid.UUID, _Pattern(UUID_PATTERN, "expected a UUID (the UETR) in its 8-4-4-4-12 hexadecimal form")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InstructionIn(_Body):
    """The EIP-712 ``Instruction`` the debtor bank signed, field for field."""

    id: Uetr = Field(description="the UETR: a UUID the bank chooses; it is also the transfer's id")
    nonce: Nonce = Field(description="the bank's replay nonce (unordered: any unused number)")
    debtor: Address = Field(description="the debtor bank's registered address (the signer)")
    creditor: Address = Field(description="the creditor bank's registered address")
    sell_currency: CurrencyCode
    sell_amount: MinorAmount = Field(description="minor units of sell_currency, fee included")
    buy_currency: CurrencyCode
    min_buy_amount: MinBuyAmount = Field(description="the least the creditor may receive, minor units")
    deadline: Deadline = Field(description="unix seconds after which it cannot settle")
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


MAJOR_AMOUNT_PATTERN = r"^[0-9]{1,40}(\.[0-9]{1,18})?$"


def _not_null(value: Any) -> Any:
    if value is None:
        raise ValueError("leave the field out rather than sending null")
    return value


MajorAmount = Annotated[
    str | None,
    BeforeValidator(_not_null),
    Field(pattern=MAJOR_AMOUNT_PATTERN, max_length=60),
    WithJsonSchema({"type": "string", "pattern": MAJOR_AMOUNT_PATTERN, "maxLength": 60}),
]


class QuoteCreate(_Body):
    """Exactly one of ``sell_amount`` and ``buy_amount``."""

    sell_currency: CurrencyCode
    buy_currency: CurrencyCode
    sell_amount: MajorAmount = Field(None, description='sell exactly this, in major units ("250000.00")')
    buy_amount: MajorAmount = Field(None, description='or: the creditor receives exactly this ("1000000")')

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"sell_currency": "USD", "buy_currency": "EUR", "sell_amount": "250000.00"}],
            "oneOf": [{"required": ["sell_amount"]}, {"required": ["buy_amount"]}],
        },
    )

    @model_validator(mode="after")
    def _exactly_one_amount(self) -> QuoteCreate:
        if (self.sell_amount is None) == (self.buy_amount is None):
            raise ValueError("give exactly one of sell_amount and buy_amount")
        return self


class SignaturePublic(BaseModel):
    r: str
    vs: str


class QuotePublic(BaseModel):
    """A locked quote. The oracle signed its EIP-712 ``Quote`` (pair, rate, fee, liquidity provider, expiry)."""

    id: str = Field(description="name it as quote_id when you submit the transfer")
    kind: str = Field(description="sell (the sell amount was fixed) or buy (the buy amount was)")
    sell_currency: str
    buy_currency: str
    sell_amount_minor: int
    sell_amount: str = Field(description="the same in major units")
    buy_amount_minor: int = Field(description="what the creditor receives at this quote: a safe min_buy_amount")
    buy_amount: str
    fee_minor: int = Field(description="taken from the sell amount")
    fee: str
    fee_bps: int
    mid_rate: str = Field(description="the market mid rate, 18 decimals")
    spread_bps: int
    rate: str = Field(description="the quoted rate after the spread, 18 decimals (units of buy per unit of sell)")
    rate_decimal: str
    liquidity_provider: str
    expiry: int = Field(description="unix seconds; a transfer naming the quote must be submitted before")
    source: str = Field(description="where the mid rate came from")
    as_of: dt.datetime
    tier: str
    quote_hash: str = Field(description="the EIP-712 struct hash of the signed Quote")
    signature: SignaturePublic | None = Field(description="the oracle's EIP-2098 signature (null: unsigned)")


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
        return cls(
            name=bank.name,
            bic=bank.bic,
            country=bank.country,
            address=bank.address,
            kind=bank.kind,
            currencies=list(bank.currencies),
        )


class BalancePublic(BaseModel):
    currency: str
    available: int
    escrowed: int
    available_decimal: str
    escrowed_decimal: str
