"""One error shape for every 4xx: ``{"error": {"code", "message", "details"}}``.

Domain code raises :class:`ApiError` (or Corridor's own errors, mapped here); routes never
build HTTP errors by hand. A 5xx is a bug. :data:`CODES` is the list of every code the API
answers with, its status and what it means; the OpenAPI document lists, per operation and
status, the codes it may answer with (see :mod:`node.api.openapi`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
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


CODES: dict[str, tuple[int, str]] = {
    # Before a route reads the request (node/api/guard.py), and the request's shape.
    "unauthorized": (401, "no API key, or not a valid one: send `Authorization: Bearer <key>`"),
    "forbidden": (403, "this key's role may not use this route"),
    "bad_content_length": (400, "the Content-Length header is not a number"),
    "body_too_large": (413, "the body is larger than the route takes (`details.limit_bytes`)"),
    "body_timeout": (408, "the body did not arrive in time"),
    "malformed_json": (400, "the body is not JSON: not UTF-8, a byte order mark, a syntax error"),
    "too_deep": (400, "the JSON nests deeper than the API takes (`details.depth_max`)"),
    "duplicate_key": (400, "an object has the same key twice"),
    "invalid_number": (400, "a number does not fit a double (such as 1e999999)"),
    "invalid_request": (422, "a field is missing, of the wrong type or out of range: `details.problems` lists each"),
    "idempotency_key_reused": (409, "the Idempotency-Key was first used with another request"),
    "not_found": (404, "no such resource (or not yours)"),
    "method_not_allowed": (405, "the path does not take this method (see the Allow header)"),
    # Transfers at intake.
    "network_paused": (409, "the operator paused the network"),
    "bank_frozen": (403, "your bank is frozen: it cannot send transfers"),
    "debtor_mismatch": (422, "the instruction's debtor is not your bank's address"),
    "unknown_currency": (422, "a currency is not settled on this network"),
    "same_currency": (422, "sell and buy currency are the same"),
    "currency_not_held": (422, "your bank does not hold the sell currency"),
    "unknown_bank": (422, "the creditor is not a bank in the directory"),
    "creditor_frozen": (422, "the creditor bank is frozen"),
    "currency_not_received": (422, "the creditor bank does not receive the buy currency"),
    "deadline_too_soon": (422, "the deadline leaves too little time to settle (`details.earliest`)"),
    "deadline_too_far": (422, "the deadline is further away than the node takes (`details.latest`)"),
    "min_buy_unreachable": (
        422,
        "no rate the vault accepts (within its band of the reference rate, with no fee) buys `min_buy_amount`: "
        "`details.best_buy_amount` is the most any quote could buy",
    ),
    "bad_signature": (422, "the signature is not your bank's EIP-712 signature of this instruction"),
    "details_mismatch": (422, "the details' keccak-256 is not the instruction's details_hash"),
    "invalid_details": (422, "the details are not a JSON object of the documented form"),
    "unknown_quote": (422, "no such quote was given to your bank"),
    "quote_expired": (422, "the quote has expired"),
    "quote_mismatch": (422, "the instruction's pair, amount or minimum differ from the quote's"),
    "duplicate_uetr": (409, "a transfer with this UETR exists: a UETR is used once"),
    "nonce_used": (409, "another of your transfers used this nonce"),
    "not_cancellable": (409, "the transfer is past RECEIVED"),
    "bad_cursor": (422, "the cursor is not one this API gave out"),
    # Quotes.
    "rate_unavailable": (422, "no fresh enough rate for the pair"),
    "invalid_fx_request": (422, "the currencies or the amount cannot be quoted"),
    # The chain, where a route reads it.
    "chain_unavailable": (503, "the node's chain connection does not answer"),
    "chain_unreachable": (409, "the chain could not be read for a reconciliation"),
    # The operator's routes.
    "bic_country_mismatch": (422, "the BIC's country is not the bank's country"),
    "bank_exists": (409, "a participant with this BIC or address exists"),
    "invalid_amount": (422, "an amount is not a positive decimal in the currency's minor units"),
    "invalid_rules": (422, "the risk rules document is refused (`details.line`, `details.reason`)"),
    "not_in_review": (409, "the transfer is not waiting for review"),
}

INTAKE_CODES = (
    "network_paused",
    "bank_frozen",
    "debtor_mismatch",
    "unknown_currency",
    "same_currency",
    "currency_not_held",
    "unknown_bank",
    "creditor_frozen",
    "currency_not_received",
    "deadline_too_soon",
    "deadline_too_far",
    "min_buy_unreachable",
    "bad_signature",
    "details_mismatch",
    "invalid_details",
    "unknown_quote",
    "quote_expired",
    "quote_mismatch",
    "duplicate_uetr",
    "nonce_used",
)
"""What a submitted instruction may be refused with (alone, or as an item of a batch)."""

GUARD_CODES = (
    "bad_content_length",
    "body_too_large",
    "body_timeout",
    "malformed_json",
    "too_deep",
    "duplicate_key",
    "invalid_number",
)
"""What any request with a body may be refused with before a route sees it."""

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "description": "machine-readable; the operation's responses list its codes"},
                "message": {"type": "string", "description": "for people: what was wrong and what is allowed"},
                "details": {"type": "object", "description": "the figures that explain it (fields, limits, bounds)"},
            },
        }
    },
}


def body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details if details is not None else {}}}


def _fx_status(exc: FxError) -> tuple[int, str]:
    if isinstance(exc, QuoteExpiredError):
        return 422, "quote_expired"
    if isinstance(exc, StaleRateError | RateUnavailableError):
        return 422, "rate_unavailable"
    return 422, "invalid_fx_request"


def _allowed(routes: list[APIRoute], path: str) -> str:
    """Every method ``path`` takes: those of all the routes of its path template (Starlette names
    only the first route's, and GET and POST /v1/transfers are two). Where templates overlap
    (/v1/transfers/batch, /v1/transfers/{transfer_id}), the one with fewer parameters is the path's."""
    matching = [route for route in routes if route.path_regex.match(path)]
    if not matching:
        return ""
    template = min((r.path_format for r in matching), key=lambda t: t.count("{"))
    return ", ".join(sorted({m for r in matching if r.path_format == template for m in r.methods or ()}))


def _problems(errors: Iterable[Any]) -> list[dict[str, str]]:
    return [{"field": ".".join(str(p) for p in e["loc"] if p != "body"), "problem": str(e["msg"])} for e in errors]


def install(app: FastAPI, routes: list[APIRoute]) -> None:
    """Map errors to the error shape; ``routes`` are the app's own, for the Allow header of a 405."""

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
        problems = _problems(errors)
        message = "; ".join(f"{p['field'] or 'body'}: {p['problem']}" for p in problems)
        return JSONResponse(body("invalid_request", message, {"problems": problems}), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            headers["Allow"] = _allowed(routes, request.url.path)
        return JSONResponse(body(code, detail), status_code=exc.status_code, headers=headers)
