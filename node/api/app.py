"""The FastAPI application: routes under /v1, one error shape, OpenAPI at /docs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from node.api import errors, openapi
from node.api.guard import BodyLimits, Guard
from node.api.ratelimit import RateLimits, RateSettings
from node.api.routes import (
    admin,
    admin_queues,
    admin_reconciliation,
    admin_reviews,
    admin_risk,
    audit,
    callbacks,
    directory,
    health,
    iso20022,
    quotes,
    transfers,
    webhooks,
)
from node.config import NodeSettings
from node.console import routes as console
from node.services import Services

if TYPE_CHECKING:
    from node.pipeline.worker import Worker

DESCRIPTION = """
Corridor's bank API. Authenticate with your bank's API key (`Authorization: Bearer <key>`);
under `/v1` a request without a valid key is refused (401) before its body is read.

Every POST takes an `Idempotency-Key`: the same key and body replay the first response; the
same key with another body is a 409. Errors are `{"error": {"code", "message", "details"}}`;
each operation lists the codes it may answer with, per status. Bodies are strict JSON
(UTF-8, no byte order mark, no key twice, nested at most `limits.json_depth_max` deep) of at
most the route's size (`GET /v1/network` gives the limits), sent within `limits.body_timeout_s`.

Amounts are integers in the currency's minor units (ISO 4217 exponent); rates are integers
with 18 decimals. What you sign (EIP-712 types, encodings, a worked example) is at
`GET /v1/network/typed-data`; the vault's ABI at `GET /v1/network/abi`. Status changes are
POSTed to your webhook (see the webhooks below).
"""


def body_limits(settings: NodeSettings) -> BodyLimits:
    return BodyLimits(
        default_bytes=settings.body_max_bytes,
        by_path={
            "/v1/transfers/batch": settings.batch_body_max_bytes,
            "/v1/admin/risk/rules": settings.rules_body_max_bytes,
        },
        timeout_s=settings.body_timeout_s,
        json_depth_max=settings.json_depth_max,
    )


def create_app(svc: Services | None, worker: Worker | None = None) -> FastAPI:
    """The API; with a ``worker``, the pipeline runs beside it while the app is up. Without
    services the app only describes itself (``corridor node openapi``)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if worker is not None:
            worker.start()
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()

    app = FastAPI(title="Corridor node", version="1", description=DESCRIPTION, lifespan=lifespan)
    app.state.services = svc
    routers = [
        openapi.document(m.router)
        for m in (
            transfers,
            quotes,
            directory,
            webhooks,
            admin,
            admin_risk,
            admin_reviews,
            admin_queues,
            admin_reconciliation,
            audit,
            health,
            iso20022,
        )
    ]
    errors.install(app, [route for router in routers for route in router.routes if isinstance(route, APIRoute)])
    for router in routers:
        app.include_router(router)
    app.webhooks.include_router(callbacks.router)
    plain_openapi = app.openapi

    def described() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = openapi.finish(plain_openapi())
        return app.openapi_schema

    app.openapi = described  # type: ignore[method-assign]
    if svc is not None:
        s = svc.settings
        rates = RateSettings(
            s.rate_limit_key_per_s, s.rate_limit_key_burst, s.auth_failures_per_s, s.auth_failures_burst
        )
        app.state.rate_limits = RateLimits(rates)
        app.add_middleware(Guard, services=svc, limits=body_limits(s), rates=app.state.rate_limits)
        if s.console:
            console.install(app, svc)
    return app


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document, without a chain or a store."""
    return create_app(None).openapi()
