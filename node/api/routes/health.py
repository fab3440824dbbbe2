"""``/healthz`` (the process answers), ``/readyz`` (chain reachable, store writable), ``/metrics``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from node.api.deps import ServicesDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Ready to take transfers: the store is writable and the chain answers")
def readyz(svc: ServicesDep) -> JSONResponse:
    checks: dict[str, Any] = {"store_writable": svc.store.writable()}
    try:
        checks["chain_block"] = svc.vault.w3.eth.block_number if svc.vault is not None else None
        checks["chain_reachable"] = svc.vault is not None
    except Exception as exc:  # any failure to answer is "not ready", with the reason
        checks["chain_reachable"] = False
        checks["chain_error"] = str(exc)[:200]
    ready = bool(checks["store_writable"] and checks["chain_reachable"])
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics")
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
