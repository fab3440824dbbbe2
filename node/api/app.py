"""The FastAPI application: routes under /v1, one error shape, OpenAPI at /docs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI

from node.api import errors
from node.api.deps import Services
from node.api.routes import admin, audit, directory, health, quotes, transfers, webhooks

if TYPE_CHECKING:
    from node.worker import Worker

DESCRIPTION = """
Corridor's bank API. Authenticate with your bank's API key (`Authorization: Bearer <key>`).
Every POST takes an `Idempotency-Key`: the same key and body replay the first response; the
same key with another body is a 409. Errors are `{"error": {"code", "message", "details"}}`.
Amounts are integers in the currency's minor units (ISO 4217 exponent); rates are integers
with 18 decimals.
"""


def create_app(svc: Services, worker: Worker | None = None) -> FastAPI:
    """The API; with a ``worker``, the pipeline runs beside it while the app is up."""

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
    errors.install(app)
    for module in (transfers, quotes, directory, webhooks, admin, audit, health):
        app.include_router(module.router)
    return app
