"""One error shape for every 4xx: ``{"error": {"code", "message", "details"}}``.

The node raises :class:`node.errors.Refused` (and fx its own errors), which know nothing of
HTTP; this module maps each code to its status, and routes never build HTTP errors by hand.
A 5xx is a bug. :data:`CODES` is the list of every code the API
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
from node.errors import Refusal, Refused

CODES: dict[Refusal, tuple[int, str]] = {
    # Before a route reads the request (node/api/guard.py), and the request's shape.
    Refusal.UNAUTHORIZED: (401, "no API key, or not a valid one: send `Authorization: Bearer <key>`"),
    Refusal.FORBIDDEN: (403, "this key's role may not use this route"),
    Refusal.BAD_CONTENT_LENGTH: (400, "the Content-Length header is not a number"),
    Refusal.BODY_TOO_LARGE: (413, "the body is larger than the route takes (`details.limit_bytes`)"),
    Refusal.BODY_TIMEOUT: (408, "the body did not arrive in time"),
    Refusal.MALFORMED_JSON: (400, "the body is not JSON: not UTF-8, a byte order mark, a syntax error"),
    Refusal.TOO_DEEP: (400, "the JSON nests deeper than the API takes (`details.depth_max`)"),
    Refusal.DUPLICATE_KEY: (400, "an object has the same key twice"),
    Refusal.INVALID_NUMBER: (400, "a number does not fit a double (such as 1e999999)"),
    Refusal.INVALID_REQUEST: (
        422,
        "a field is missing, of the wrong type or out of range: `details.problems` lists each",
    ),
    Refusal.IDEMPOTENCY_KEY_REUSED: (409, "the Idempotency-Key was first used with another request"),
    Refusal.NOT_FOUND: (404, "no such resource (or not yours)"),
    Refusal.METHOD_NOT_ALLOWED: (405, "the path does not take this method (see the Allow header)"),
    # Transfers at intake.
    Refusal.NETWORK_PAUSED: (409, "the operator paused the network"),
    Refusal.BANK_FROZEN: (403, "your bank is frozen: it cannot send transfers"),
    Refusal.DEBTOR_MISMATCH: (422, "the instruction's debtor is not your bank's address"),
    Refusal.UNKNOWN_CURRENCY: (422, "a currency is not settled on this network"),
    Refusal.SAME_CURRENCY: (422, "sell and buy currency are the same"),
    Refusal.CURRENCY_NOT_HELD: (422, "your bank does not hold the sell currency"),
    Refusal.UNKNOWN_BANK: (422, "the creditor is not a bank in the directory"),
    Refusal.CREDITOR_FROZEN: (422, "the creditor bank is frozen"),
    Refusal.CURRENCY_NOT_RECEIVED: (422, "the creditor bank does not receive the buy currency"),
    Refusal.DEADLINE_TOO_SOON: (422, "the deadline leaves too little time to settle (`details.earliest`)"),
    Refusal.DEADLINE_TOO_FAR: (422, "the deadline is further away than the node takes (`details.latest`)"),
    Refusal.MIN_BUY_UNREACHABLE: (
        422,
        "no rate the vault accepts (within its band of the reference rate, with no fee) buys `min_buy_amount`: "
        "`details.best_buy_amount` is the most any quote could buy",
    ),
    Refusal.BAD_SIGNATURE: (422, "the signature is not your bank's EIP-712 signature of this instruction"),
    Refusal.DETAILS_MISMATCH: (422, "the details' keccak-256 is not the instruction's details_hash"),
    Refusal.INVALID_DETAILS: (422, "the details are not a JSON object of the documented form"),
    Refusal.UNKNOWN_QUOTE: (422, "no such quote was given to your bank"),
    Refusal.QUOTE_EXPIRED: (422, "the quote has expired"),
    Refusal.QUOTE_MISMATCH: (422, "the instruction's pair, amount or minimum differ from the quote's"),
    Refusal.DUPLICATE_UETR: (409, "a transfer with this UETR exists: a UETR is used once"),
    Refusal.NONCE_USED: (409, "another of your transfers used this nonce"),
    Refusal.NOT_CANCELLABLE: (409, "the transfer is past RECEIVED, or in a settlement cycle being sent"),
    Refusal.QUEUE_FULL: (429, "your bank has as many transfers waiting to settle as the node queues (`details`)"),
    Refusal.RATE_LIMITED: (
        429,
        "too many requests: for this API key, or without a valid key from this address; wait the `Retry-After` "
        "header's seconds (also `details.retry_after_s`)",
    ),
    Refusal.BAD_CURSOR: (422, "the cursor is not one this API gave out"),
    # Quotes.
    Refusal.RATE_UNAVAILABLE: (422, "no fresh enough rate for the pair"),
    Refusal.INVALID_FX_REQUEST: (422, "the currencies or the amount cannot be quoted"),
    # The chain, where a route reads it.
    Refusal.CHAIN_UNAVAILABLE: (503, "the node's chain connection does not answer"),
    Refusal.CHAIN_UNREACHABLE: (409, "the chain could not be read for a reconciliation"),
    # The operator's routes.
    Refusal.INVALID_BIC: (422, "the BIC is not one (ISO 9362 structure, an ISO 3166 country): `details.field`"),
    Refusal.BIC_COUNTRY_MISMATCH: (422, "the BIC's country is not the bank's country"),
    Refusal.BANK_EXISTS: (409, "a participant with this BIC or address exists"),
    Refusal.INVALID_AMOUNT: (422, "an amount is not a positive decimal in the currency's minor units"),
    Refusal.INVALID_RULES: (422, "the risk rules document is refused (`details.line`, `details.reason`)"),
    Refusal.NOT_IN_REVIEW: (409, "the transfer is not waiting for review"),
    # Webhooks.
    Refusal.CALLBACK_URL_FORBIDDEN: (
        422,
        "the callback URL reaches a loopback, link-local, private or reserved address, or does not resolve",
    ),
    Refusal.REDELIVERY_RANGE: (422, "the redelivery's time range is empty or longer than the node takes"),
    # ISO 20022 messages (node/iso20022, the README's mapping table).
    Refusal.UNSUPPORTED_MEDIA_TYPE: (415, "the route takes another Content-Type (`details.accepted`)"),
    Refusal.ISO_INVALID: (
        422,
        "the document is not well-formed XML, or not valid against its message's XSD: `details.problems` names "
        "each element (`path`) and the `reason`",
    ),
    Refusal.ISO_UNSUPPORTED: (422, "the document is not one of the messages this route takes (`details.accepted`)"),
    Refusal.ISO_UNMAPPABLE: (
        422,
        "the document lacks what the instruction is mapped from, or carries more than one transfer (`details.element`)",
    ),
    Refusal.INVALID_IBAN: (422, "an account's IBAN fails its checksum, length or country (`details.element`)"),
    Refusal.INVALID_COUNTRY: (422, "a party's country is not an ISO 3166 code (`details.element`)"),
    Refusal.ISO_DOCUMENT_MISMATCH: (
        409,
        "a transfer with this UETR was submitted with another document (a UETR is used once; the same document "
        "again returns the transfer)",
    ),
}

INTAKE_CODES = (
    Refusal.NETWORK_PAUSED,
    Refusal.BANK_FROZEN,
    Refusal.DEBTOR_MISMATCH,
    Refusal.UNKNOWN_CURRENCY,
    Refusal.SAME_CURRENCY,
    Refusal.CURRENCY_NOT_HELD,
    Refusal.UNKNOWN_BANK,
    Refusal.CREDITOR_FROZEN,
    Refusal.CURRENCY_NOT_RECEIVED,
    Refusal.DEADLINE_TOO_SOON,
    Refusal.DEADLINE_TOO_FAR,
    Refusal.MIN_BUY_UNREACHABLE,
    Refusal.BAD_SIGNATURE,
    Refusal.DETAILS_MISMATCH,
    Refusal.INVALID_DETAILS,
    Refusal.UNKNOWN_QUOTE,
    Refusal.QUOTE_EXPIRED,
    Refusal.QUOTE_MISMATCH,
    Refusal.DUPLICATE_UETR,
    Refusal.NONCE_USED,
    Refusal.QUEUE_FULL,
)
"""What a submitted instruction may be refused with (alone, or as an item of a batch)."""

GUARD_CODES = (
    Refusal.BAD_CONTENT_LENGTH,
    Refusal.BODY_TOO_LARGE,
    Refusal.BODY_TIMEOUT,
    Refusal.MALFORMED_JSON,
    Refusal.TOO_DEEP,
    Refusal.DUPLICATE_KEY,
    Refusal.INVALID_NUMBER,
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


def status_of(refused: Refused) -> int:
    """The HTTP status of a refusal."""
    return CODES[refused.code][0]


def response(refused: Refused) -> JSONResponse:
    """The error response to a refusal (with the headers its status calls for)."""
    status = status_of(refused)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if status in (408, 413):
        headers["Connection"] = "close"  # the rest of the body is not read
    if isinstance(refused.details, dict) and "retry_after_s" in refused.details:
        headers["Retry-After"] = str(refused.details["retry_after_s"])
    return JSONResponse(body(refused.code, refused.message, refused.details), status, headers=headers)


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

    @app.exception_handler(Refused)
    async def _refused(_: Request, exc: Refused) -> JSONResponse:
        return response(exc)

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
