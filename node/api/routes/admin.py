"""``/v1/admin``: the operator's key only. Onboard banks, freeze them, pause the network (the limits
and risk rules, the review queue and reconciliation are routes of their own modules, under the
same prefix). Every change is written to the audit log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from node.api.deps import IdempotencyKey, Operator, RawBody, ServicesDep
from node.api.guard import JsonRoute
from node.api.openapi import responses
from node.api.routes._idempotent import run_post
from node.api.schemas import Address, BankPublic, CurrencyCode
from node.errors import Refusal
from node.ops import audit_log, directory
from node.ops.actions import OPERATOR, set_frozen, set_paused
from node.store.models import Bank
from settlement.identifiers import BIC_PATTERN

router = APIRouter(prefix="/v1/admin", tags=["admin"], route_class=JsonRoute)


class BankCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=140)
    bic: str = Field(pattern=BIC_PATTERN, description="8 or 11 characters (ISO 9362), of an ISO 3166 country")
    country: str = Field(pattern=r"^[A-Z]{2}$")
    address: Address
    kind: str = Field("bank", pattern=r"^(bank|lp)$")
    currencies: list[CurrencyCode] = Field(min_length=1)


class BankCreated(BankPublic):
    api_key: str | None = Field(description="shown once: only its hash is kept (null for liquidity providers)")


class Switch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: bool = Field(strict=True)


@router.post(
    "/banks",
    status_code=201,
    response_model=BankCreated,
    summary="Add a bank to the directory",
    responses=responses(
        Refusal.UNKNOWN_CURRENCY, Refusal.INVALID_BIC, Refusal.BIC_COUNTRY_MISMATCH, Refusal.BANK_EXISTS
    ),
)
def onboard(
    body: BankCreate, svc: ServicesDep, who: Operator, request: Request, raw: RawBody, key: IdempotencyKey = None
) -> JSONResponse:
    def work(session: Session) -> dict[str, Any]:
        bank, api_key = directory.onboard(
            session,
            svc.manifest,
            name=body.name,
            bic=body.bic,
            country=body.country,
            address=body.address,
            kind=body.kind,
            currencies=body.currencies,
        )
        audit_log.append(session, OPERATOR, "bank.onboarded", f"bank:{bank.bic}", body.model_dump(mode="json"))
        return BankCreated(**BankPublic.of(bank).model_dump(), api_key=api_key).model_dump(mode="json")

    return run_post(svc, who, request, raw, key, 201, work)


class BankFrozen(BankPublic):
    frozen: bool
    frozen_on_chain: bool = Field(
        description="what the vault holds; follows `frozen` once the operator's setFrozen transaction is confirmed"
    )


class NetworkPaused(BaseModel):
    paused: bool
    paused_on_chain: bool = Field(description="what the vault holds; follows `paused` once setPaused is confirmed")


@router.post(
    "/banks/{bic}/frozen",
    response_model=BankFrozen,
    summary="Freeze or unfreeze a bank, off chain at once and in the vault",
    description=(
        "At once the node refuses the bank's new transfers (403 bank_frozen) and payments to it, and rejects its "
        "transfers not yet escrowed (code bank_frozen). The node's worker then sends the vault's `setFrozen` with "
        "the operator's key; `frozen_on_chain` follows when it is confirmed."
    ),
    responses=responses(Refusal.NOT_FOUND),
)
def freeze(
    bic: str, body: Switch, svc: ServicesDep, who: Operator, request: Request, raw: RawBody, key: IdempotencyKey = None
) -> JSONResponse:
    return run_post(svc, who, request, raw, key, 200, lambda session: _frozen(set_frozen(session, bic, body.value)))


@router.post(
    "/paused",
    response_model=NetworkPaused,
    summary="Pause or resume the network, off chain at once and in the vault",
    description=(
        "While paused the node refuses new transfers (409 network_paused) and sends nothing; the worker sends the "
        "vault's `setPaused` with the operator's key, and `paused_on_chain` follows when it is confirmed."
    ),
)
def pause(
    body: Switch, svc: ServicesDep, who: Operator, request: Request, raw: RawBody, key: IdempotencyKey = None
) -> JSONResponse:
    def work(session: Session) -> dict[str, Any]:
        state = set_paused(session, body.value)
        return NetworkPaused(paused=state.paused, paused_on_chain=state.paused_on_chain).model_dump(mode="json")

    return run_post(svc, who, request, raw, key, 200, work)


def _frozen(bank: Bank) -> dict[str, Any]:
    return BankFrozen(
        **BankPublic.of(bank).model_dump(), frozen=bank.frozen, frozen_on_chain=bank.frozen_on_chain
    ).model_dump(mode="json")


# ====================================================================== limits and risk rules


# ====================================================================== the review queue


# ====================================================================== reconciliation
