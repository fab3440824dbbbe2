"""``/v1/admin``: the operator's key only. Onboard a bank into the directory, set limits, freeze, pause."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from node import directory
from node.api.deps import IdempotencyKey, Operator, RawBody, ServicesDep
from node.api.errors import NotFound, Unprocessable
from node.api.routes._idempotent import run_post
from node.api.schemas import Address, BankPublic
from node.store.models import Bank, NetworkState
from settlement import money
from settlement.errors import CorridorError

router = APIRouter(prefix="/v1/admin", tags=["admin"])


class BankCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=140)
    bic: str = Field(pattern=r"^[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?$", description="8 or 11 characters")
    country: str = Field(pattern=r"^[A-Z]{2}$")
    address: Address
    kind: str = Field("bank", pattern=r"^(bank|lp)$")
    currencies: list[str] = Field(min_length=1)


class BankCreated(BankPublic):
    api_key: str | None = Field(description="shown once: only its hash is kept (null for liquidity providers)")


class Switch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: bool


@router.post("/banks", status_code=201, response_model=BankCreated, summary="Add a bank to the directory")
def onboard(
    body: BankCreate, svc: ServicesDep, who: Operator, request: Request, raw: RawBody, key: IdempotencyKey = None
) -> JSONResponse:
    def work(session: Session) -> dict[str, Any]:
        bank, api_key = directory.onboard(session, svc.manifest, name=body.name, bic=body.bic, country=body.country,
                                          address=body.address, kind=body.kind, currencies=body.currencies)  # fmt: skip
        return BankCreated(**BankPublic.of(bank).model_dump(), api_key=api_key).model_dump(mode="json")

    return run_post(svc, who, request, raw, key, 201, work)


@router.post("/banks/{bic}/frozen", response_model=BankPublic, summary="Freeze or unfreeze a bank (off chain)")
def freeze(
    bic: str, body: Switch, svc: ServicesDep, who: Operator, request: Request, raw: RawBody, key: IdempotencyKey = None
) -> JSONResponse:
    def work(session: Session) -> dict[str, Any]:
        bank = session.execute(select(Bank).where(Bank.bic == bic)).scalar_one_or_none()
        if bank is None:
            raise NotFound(f"no bank {bic}")
        bank.frozen = body.value
        return BankPublic.of(bank).model_dump(mode="json")

    return run_post(svc, who, request, raw, key, 200, work)


@router.post("/paused", summary="Pause or resume the network (the node refuses new transfers while paused)")
def pause(
    body: Switch, svc: ServicesDep, who: Operator, request: Request, raw: RawBody, key: IdempotencyKey = None
) -> JSONResponse:
    def work(session: Session) -> dict[str, Any]:
        state = session.get(NetworkState, 1)
        assert state is not None, "the initial migration creates the row"
        state.paused, state.updated_at = body.value, dt.datetime.now(dt.UTC)
        return {"paused": state.paused}

    return run_post(svc, who, request, raw, key, 200, work)


class LimitsSet(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"max_per_transfer": {"USD": "5000000.00"}}]}
    )
    max_per_transfer: dict[str, str] = Field(
        description="per sell currency, the largest transfer in major units (a decimal string); omitted: no limit"
    )


class LimitsPublic(BaseModel):
    bic: str
    max_per_transfer_minor: dict[str, int]


@router.post("/banks/{bic}/limits", response_model=LimitsPublic, summary="Set a bank's per-transfer limits")
def set_limits(
    bic: str, body: LimitsSet, svc: ServicesDep, who: Operator, request: Request, raw: RawBody,
    key: IdempotencyKey = None,
) -> JSONResponse:  # fmt: skip
    def work(session: Session) -> dict[str, Any]:
        bank = session.execute(select(Bank).where(Bank.bic == bic)).scalar_one_or_none()
        if bank is None:
            raise NotFound(f"no bank {bic}")
        limits: dict[str, int] = {}
        for code, amount in body.max_per_transfer.items():
            if code not in svc.manifest.assets:
                raise Unprocessable(f"{code} is not settled on this network", {"field": f"max_per_transfer.{code}"},
                                    code="unknown_currency")  # fmt: skip
            try:
                limits[code] = int(money.to_minor(amount, code))
            except CorridorError as exc:
                raise Unprocessable(str(exc), {"field": f"max_per_transfer.{code}"}, code="invalid_amount") from None
        bank.limits = limits
        return LimitsPublic(bic=bank.bic, max_per_transfer_minor=limits).model_dump(mode="json")

    return run_post(svc, who, request, raw, key, 200, work)
