"""``/healthz`` (the process answers), ``/readyz`` (store, chain, watcher), ``/metrics``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from node import metrics as node_metrics
from node.api.deps import ServicesDep
from node.api.guard import JsonRoute
from node.ops.backups import newest
from node.transfers import chain_head
from settlement.errors import CorridorError

router = APIRouter(tags=["health"], route_class=JsonRoute)


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, Any] = Field(description="store_writable, chain_reachable, chain_block, watcher_block, ...")


@router.get(
    "/readyz",
    summary="Ready to take transfers: the store is writable, the chain answers, the watcher keeps up",
    description="503 with the failing check otherwise. Transfers accepted while not ready wait; none is lost.",
    response_model=Readiness,
    responses={503: {"description": "not ready: `checks` says why", "model": Readiness}},
)
def readyz(svc: ServicesDep) -> JSONResponse:
    checks: dict[str, Any] = {"store_writable": svc.store.writable()}
    try:
        checks["chain_block"] = svc.vault.w3.eth.block_number if svc.vault is not None else None
        checks["chain_reachable"] = svc.vault is not None
    except Exception as exc:  # any failure to answer is "not ready", with the reason
        checks["chain_reachable"] = False
        checks["chain_error"] = str(exc)[:200]
    with svc.store.transaction(write=False) as session:
        watched = chain_head(session)
    checks["watcher_block"] = watched
    lag = None if watched is None or not checks.get("chain_block") else checks["chain_block"] - watched
    checks["watcher_lag_blocks"] = lag
    checks["watcher_keeping_up"] = lag is not None and lag <= svc.settings.watcher_lag_max_blocks
    ready = bool(checks["store_writable"] and checks["chain_reachable"] and checks["watcher_keeping_up"])
    interval = svc.settings.backup_interval_s
    if interval:
        age = backup_age_s(svc.settings.backups)
        checks["backup_age_s"] = None if age is None else round(age, 1)
        # Two intervals and a minute: one missed backup is a warning in the logs, two are not ready.
        checks["backup_recent"] = age is not None and age <= 2 * interval + 60
        ready = ready and checks["backup_recent"]
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=PlainTextResponse,
    responses={
        200: {
            "description": "the Prometheus text exposition format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
def metrics(svc: ServicesDep) -> Response:
    age = backup_age_s(svc.settings.backups)
    node_metrics.BACKUP_AGE.set(-1 if age is None else age)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def backup_age_s(directory: Path) -> float | None:
    """Seconds since the newest backup in ``directory`` was taken (None: there is none)."""
    try:
        manifest = newest(directory)
    except CorridorError:
        return None
    if manifest is None:
        return None
    return (dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(manifest.created_at)).total_seconds()
