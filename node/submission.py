"""What a bank submits, as intake reads it: the instruction's fields, its signature, and
optionally a quote and the details. The API's request body (``node.api.schemas.TransferCreate``)
has this shape; intake depends on the shape, not on the API."""

from __future__ import annotations

import uuid
from typing import Protocol


class InstructionIn(Protocol):
    """A submitted instruction's fields (the EIP-712 ``Instruction``, the id as a UETR)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def nonce(self) -> int: ...
    @property
    def debtor(self) -> str: ...
    @property
    def creditor(self) -> str: ...
    @property
    def sell_currency(self) -> str: ...
    @property
    def sell_amount(self) -> int: ...
    @property
    def buy_currency(self) -> str: ...
    @property
    def min_buy_amount(self) -> int: ...
    @property
    def deadline(self) -> int: ...
    @property
    def details_hash(self) -> str: ...


class SignatureIn(Protocol):
    """An EIP-2098 compact signature, as 0x-prefixed hex."""

    @property
    def r(self) -> str: ...
    @property
    def vs(self) -> str: ...


class TransferCreate(Protocol):
    """What a bank submits: the instruction, its signature, and optionally a quote and the details
    (the API's body of ``POST /v1/transfers`` has this shape)."""

    @property
    def instruction(self) -> InstructionIn: ...
    @property
    def signature(self) -> SignatureIn: ...
    @property
    def quote_id(self) -> str | None: ...
    @property
    def details(self) -> str | None: ...
