"""One error shape for every 4xx: ``{"error": {"code", "message", "details"}}``.

Domain code raises :class:`ApiError` (or Corridor's own errors, mapped here); routes never
build HTTP errors by hand. A 5xx is a bug.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from fx.errors import FxError, QuoteExpiredError, RateUnavailableError, StaleRateError
from settlement.errors import CorridorError


class ApiError(CorridorError):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, details: dict[str, Any] | None = None, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
        if code is not None:
            self.code = code


class Unauthorized(ApiError):
    status_code, code = 401, "unauthorized"


class Forbidden(ApiError):
    status_code, code = 403, "forbidden"


class NotFound(ApiError):
    status_code, code = 404, "not_found"


class Conflict(ApiError):
    status_code, code = 409, "conflict"


class Unprocessable(ApiError):
    status_code, code = 422, "unprocessable"


def body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details if details is not None else {}}}


def _fx_status(exc: FxError) -> tuple[int, str]:
    if isinstance(exc, QuoteExpiredError):
        return 422, "quote_expired"
    if isinstance(exc, StaleRateError | RateUnavailableError):
        return 422, "rate_unavailable"
    return 422, "invalid_fx_request"


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(body(exc.code, exc.message, exc.details), status_code=exc.status_code)

    @app.exception_handler(FxError)
    async def _fx(_: Request, exc: FxError) -> JSONResponse:
        status, code = _fx_status(exc)
        return JSONResponse(body(code, str(exc), {"error": type(exc).__name__}), status_code=status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse(body("malformed_json", "the request body is not valid JSON"), status_code=400)
        problems = [
            {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "problem": str(e["msg"])} for e in errors
        ]
        message = "; ".join(f"{p['field'] or 'body'}: {p['problem']}" for p in problems)
        return JSONResponse(body("invalid_request", message, {"problems": problems}), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        return JSONResponse(body(code, detail), status_code=exc.status_code, headers=getattr(exc, "headers", None))
