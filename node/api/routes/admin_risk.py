"""``/v1/admin``: the operator's limits and risk rules (every change in the audit log)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import yaml
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from node.api.deps import IdempotencyKey, Operator, RawBody, ReadSession, ServicesDep
from node.api.guard import JsonRoute
from node.api.openapi import responses
from node.api.routes._idempotent import run_post
from node.errors import Refusal, Refused
from node.ops.actions import OPERATOR, bank_by_bic
from node.ops.rules import store_rules
from node.services import Services
from node.store.models import RiskRulesVersion
from settlement import money
from settlement.errors import CorridorError
from settlement.risk import RiskRules, RulesError, load_rules

router = APIRouter(prefix="/v1/admin", tags=["admin"], route_class=JsonRoute)

AmountsIn = dict[str, str]


RULES_LENGTH_MAX = 1_000_000


class LimitsSet(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"max_per_transfer": {"USD": "5000000.00"}, "daily_outflow": {"USD": "20000000.00"}}]
        },
    )
    max_per_transfer: AmountsIn | None = Field(None, description="per sell currency, major units (decimal strings)")
    daily_outflow: AmountsIn | None = Field(None, description="per sell currency, sent today (UTC)")
    net_debit_cap: AmountsIn | None = Field(
        None, description="per currency, sent minus received today; never more than the bank's settlement balance"
    )


class LimitsPublic(BaseModel):
    bic: str
    max_per_transfer_minor: dict[str, int]
    daily_outflow_minor: dict[str, int]
    net_debit_cap_minor: dict[str, int]
    rules_version: int


class RulesIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"text": "version: 1\n"}]})
    text: str = Field(max_length=RULES_LENGTH_MAX, description="the rules document (YAML; see settlement/risk)")


class RulesPublic(BaseModel):
    version: int | None
    source: str
    actor: str
    created_at: dt.datetime | None
    text: str


@router.post(
    "/banks/{bic}/limits",
    response_model=LimitsPublic,
    summary="Set a bank's limits (a new version of the risk rules)",
    description=(
        "Each limit given replaces the bank's own for those currencies in `limits.banks.<BIC>` of the rules "
        "document; limits not given are kept. The document is checked whole and stored as a new version (its "
        "comments are not kept by this edit; upload the document itself to keep them)."
    ),
    responses=responses(Refusal.NOT_FOUND, Refusal.UNKNOWN_CURRENCY, Refusal.INVALID_AMOUNT, Refusal.INVALID_RULES),
)
def set_limits(
    bic: str,
    body: LimitsSet,
    svc: ServicesDep,
    who: Operator,
    request: Request,
    raw: RawBody,
    key: IdempotencyKey = None,
) -> JSONResponse:
    def work(session: Session) -> dict[str, Any]:
        bank_by_bic(session, bic)
        current = _current(session)
        document = yaml.safe_load(current.text) if current.text.strip() else None
        document = document if isinstance(document, dict) else {"version": 1}
        own = document.setdefault("limits", {}).setdefault("banks", {}).setdefault(bic, {})
        for name, amounts in body.model_dump(exclude_none=True).items():
            for code, amount in amounts.items():
                if code not in svc.manifest.assets:
                    raise Refused(
                        Refusal.UNKNOWN_CURRENCY, f"{code} is not settled on this network", {"field": f"{name}.{code}"}
                    )
                try:
                    money.to_minor(amount, code)
                except CorridorError as exc:
                    raise Refused(Refusal.INVALID_AMOUNT, str(exc), {"field": f"{name}.{code}"}) from None
                if amount.strip().startswith("-"):
                    raise Refused(Refusal.INVALID_AMOUNT, "a limit cannot be negative", {"field": f"{name}.{code}"})
            own.setdefault(name, {}).update(amounts)
        rules = _check_rules(svc, yaml.safe_dump(document, sort_keys=False))
        version = store_rules(session, rules, f"admin API: limits of {bic}", OPERATOR)
        mine = rules.limits_for(bic)
        return LimitsPublic(
            bic=bic,
            max_per_transfer_minor=dict(mine.max_per_transfer),
            daily_outflow_minor=dict(mine.daily_outflow),
            net_debit_cap_minor=dict(mine.net_debit_cap),
            rules_version=version.id,
        ).model_dump(mode="json")

    return run_post(svc, who, request, raw, key, 200, work)


@router.get("/risk/rules", response_model=RulesPublic, summary="The risk rules in force")
def get_rules(session: ReadSession, _: Operator) -> RulesPublic:
    return _current(session)


@router.post(
    "/risk/rules",
    response_model=RulesPublic,
    summary="Load new risk rules",
    description=(
        "The whole document, checked before anything is stored: unknown keys, negative limits, unknown currencies, "
        "a bad BIC, country or pair, or a sanctions list that cannot be read are refused with 422 `invalid_rules` "
        "and `details.line` and `details.reason`, and the rules in force stay as they were. Relative sanctions-list "
        "paths are read from the directory of `CORRIDOR_NODE_RISK_RULES` (else the data directory)."
    ),
    responses=responses(Refusal.INVALID_RULES),
)
def set_rules(
    body: RulesIn, svc: ServicesDep, who: Operator, request: Request, raw: RawBody, key: IdempotencyKey = None
) -> JSONResponse:
    def work(session: Session) -> dict[str, Any]:
        version = store_rules(session, _check_rules(svc, body.text), "admin API", OPERATOR)
        return _rules_public(version).model_dump(mode="json")

    return run_post(svc, who, request, raw, key, 200, work)


def _rules_dir(svc: Services) -> Path:
    return svc.settings.risk_rules.parent if svc.settings.risk_rules else svc.settings.data_dir


def _check_rules(svc: Services, text: str) -> RiskRules:
    try:
        return load_rules(text, svc.manifest.assets, source="rules", base_dir=_rules_dir(svc))
    except RulesError as exc:
        raise Refused(
            Refusal.INVALID_RULES, str(exc), {"line": exc.line, "reason": exc.reason, "source": exc.source}
        ) from None


def _current(session: Session) -> RulesPublic:
    v = session.scalars(select(RiskRulesVersion).order_by(RiskRulesVersion.id.desc()).limit(1)).first()
    return _rules_public(v)


def _rules_public(v: RiskRulesVersion | None) -> RulesPublic:
    if v is None:
        return RulesPublic(version=None, source="", actor="", created_at=None, text="")
    return RulesPublic(version=v.id, source=v.source, actor=v.actor, created_at=v.created_at, text=v.text)
