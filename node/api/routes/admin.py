"""``/v1/admin``: the operator's key only. Onboard banks, set limits and risk rules, freeze, pause,
decide held transfers, and see reconciliation. Every change is written to the audit log."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import httpx
import yaml
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from node import transfers, transitions
from node.api import views
from node.api.deps import IdempotencyKey, Operator, RawBody, ReadSession, ServicesDep
from node.api.guard import JsonRoute
from node.api.openapi import responses
from node.api.routes._idempotent import run_post
from node.api.schemas import Address, BankPublic, CurrencyCode, TransferPublic
from node.auth import Principal, Role
from node.errors import Refusal, Refused
from node.ops import audit_log, directory
from node.ops.reconcile import last_run, open_mismatches, reconcile
from node.ops.rules import store_rules
from node.services import Services
from node.store.models import Bank, NetworkState, RiskRulesVersion, Transfer
from settlement import money
from settlement.errors import ChainError, CorridorError
from settlement.lifecycle import ReasonCode, ReviewState
from settlement.lifecycle import TransferStatus as S
from settlement.risk import RiskRules, RulesError, load_rules

OPERATOR = "operator"
"""The actor the audit log names for the operator's API key."""
RULES_LENGTH_MAX = 1_000_000

router = APIRouter(prefix="/v1/admin", tags=["admin"], route_class=JsonRoute)


class BankCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=140)
    bic: str = Field(pattern=r"^[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?$", description="8 or 11 characters")
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
    responses=responses(Refusal.UNKNOWN_CURRENCY, Refusal.BIC_COUNTRY_MISMATCH, Refusal.BANK_EXISTS),
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
    def work(session: Session) -> dict[str, Any]:
        bank = _bank(session, bic)
        bank.frozen = body.value
        audit_log.append(session, OPERATOR, "bank.frozen" if body.value else "bank.unfrozen", f"bank:{bic}", {})
        return _frozen(bank)

    return run_post(svc, who, request, raw, key, 200, work)


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
        state = session.get(NetworkState, 1)
        assert state is not None, "the initial migration creates the row"
        state.paused, state.updated_at = body.value, dt.datetime.now(dt.UTC)
        audit_log.append(session, OPERATOR, "network.paused" if body.value else "network.resumed", "network", {})
        return NetworkPaused(paused=state.paused, paused_on_chain=state.paused_on_chain).model_dump(mode="json")

    return run_post(svc, who, request, raw, key, 200, work)


def _bank(session: Session, bic: str) -> Bank:
    bank = session.execute(select(Bank).where(Bank.bic == bic)).scalar_one_or_none()
    if bank is None:
        raise Refused(Refusal.NOT_FOUND, f"no bank {bic}")
    return bank


def _frozen(bank: Bank) -> dict[str, Any]:
    return BankFrozen(
        **BankPublic.of(bank).model_dump(), frozen=bank.frozen, frozen_on_chain=bank.frozen_on_chain
    ).model_dump(mode="json")


# ====================================================================== limits and risk rules

AmountsIn = dict[str, str]


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
        _bank(session, bic)
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


# ====================================================================== the review queue


class ReviewDecision(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"note": "beneficiary verified"}]})
    note: str = Field("", max_length=1000, description="why; kept in the transfer's history and the audit log")


class ReviewPage(BaseModel):
    data: list[TransferPublic]


@router.get("/reviews", response_model=ReviewPage, summary="Transfers held for review (escrowed, not settled)")
def reviews(session: ReadSession, _: Operator) -> ReviewPage:
    rows = session.scalars(select(Transfer).where(Transfer.review == ReviewState.PENDING).order_by(Transfer.created_at))
    return ReviewPage(data=[views.transfer_public(t) for t in rows])


@router.post(
    "/reviews/{transfer_id}/approve",
    response_model=TransferPublic,
    summary="Approve a held transfer: it settles",
    responses=responses(Refusal.NOT_FOUND, Refusal.NOT_IN_REVIEW),
)
def approve(
    transfer_id: str,
    body: ReviewDecision,
    svc: ServicesDep,
    who: Operator,
    request: Request,
    raw: RawBody,
    key: IdempotencyKey = None,
) -> JSONResponse:
    return run_post(
        svc, who, request, raw, key, 200, lambda session: _decide(session, transfer_id, ReviewState.APPROVED, body.note)
    )


@router.post(
    "/reviews/{transfer_id}/reject",
    response_model=TransferPublic,
    summary="Reject a held transfer: refunded if it escrowed, else REJECTED",
    description=(
        "An escrowed transfer is refunded to the debtor at once (the operator's key may refund before the deadline) "
        "and ends REFUNDED with code review_rejected; one not yet escrowed ends REJECTED with that code."
    ),
    responses=responses(Refusal.NOT_FOUND, Refusal.NOT_IN_REVIEW),
)
def reject(
    transfer_id: str,
    body: ReviewDecision,
    svc: ServicesDep,
    who: Operator,
    request: Request,
    raw: RawBody,
    key: IdempotencyKey = None,
) -> JSONResponse:
    return run_post(
        svc, who, request, raw, key, 200, lambda session: _decide(session, transfer_id, ReviewState.REJECTED, body.note)
    )


def _decide(session: Session, transfer_id: str, decision: str, note: str) -> dict[str, Any]:
    t = transfers.get_visible(session, Principal(Role.OPERATOR), transfer_id)
    t = transitions.lock_for_update(session, [t.id])[t.id]
    if t.review != ReviewState.PENDING:
        raise Refused(
            Refusal.NOT_IN_REVIEW, f"transfer {t.id} is not waiting for review (review: {t.review or 'never held'})"
        )
    now = dt.datetime.now(dt.UTC)
    t.review, t.reviewed_at = decision, now
    why = f"review {decision} by the operator" + (f": {note}" if note else "")
    t.review_reason = f"{t.review_reason}; {why}"
    audit_log.append(session, OPERATOR, f"review.{decision}", f"transfer:{t.id}", {"note": note, "status": t.status})
    if decision is ReviewState.REJECTED and t.status == S.RECEIVED.value and t.batch_id is None:
        transitions.transition(session, t, S.REJECTED, why, code=ReasonCode.REVIEW_REJECTED, actor=OPERATOR)
    else:
        t.status_reason, t.status_code, t.updated_at = why, f"review_{decision}", now
    return views.transfer_public(t).model_dump(mode="json")


# ====================================================================== reconciliation


class MismatchPublic(BaseModel):
    kind: str = Field(description="chain_balance, escrowed or transfer")
    subject: str
    expected: str
    found: str
    detail: str
    first_seen_at: dt.datetime
    last_seen_at: dt.datetime
    first_run_id: int
    last_run_id: int


class ReconciliationPublic(BaseModel):
    last_run: dict[str, Any] | None
    open_mismatches: list[MismatchPublic]


@router.get("/reconciliation", response_model=ReconciliationPublic, summary="The last reconciliation and what it found")
def reconciliation(session: ReadSession, _: Operator) -> ReconciliationPublic:
    return _reconciliation(session)


@router.post(
    "/reconciliation",
    response_model=ReconciliationPublic,
    summary="Reconcile the store with the chain now",
    description="Runs at once (as `corridor reconcile` does) and answers with what it found. Nothing is corrected.",
    responses=responses(Refusal.CHAIN_UNREACHABLE),
)
def reconcile_now(svc: ServicesDep, _: Operator) -> ReconciliationPublic:
    try:
        reconcile(svc.store, svc.settings.rpc_url, svc.manifest, svc.settings.confirmations, "operator")
    except (ChainError, OSError, httpx.HTTPError) as exc:
        raise Refused(Refusal.CHAIN_UNREACHABLE, f"the chain could not be read: {exc}") from None
    with svc.store.transaction(write=False) as session:
        return _reconciliation(session)


def _reconciliation(session: Session) -> ReconciliationPublic:
    run = last_run(session)
    summary = None
    if run is not None:
        summary = {
            "id": run.id,
            "trigger": run.trigger,
            "started_at": run.started_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "block": run.block,
            "checked": run.checked,
            "mismatches": run.mismatches,
            "error": run.error,
        }
    return ReconciliationPublic(
        last_run=summary,
        open_mismatches=[
            MismatchPublic(
                kind=m.kind,
                subject=m.subject,
                expected=m.expected,
                found=m.found,
                detail=m.detail,
                first_seen_at=m.first_seen_at,
                last_seen_at=m.last_seen_at,
                first_run_id=m.first_run_id,
                last_run_id=m.last_run_id,
            )
            for m in open_mismatches(session)
        ],
    )
