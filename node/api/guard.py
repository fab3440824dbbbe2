"""What every request passes before a route sees it: the caller's key, then a bounded body.

A pure ASGI middleware, in front of FastAPI, because FastAPI reads and parses a route's body
before it resolves the route's dependencies: authentication in a dependency came after the
body was parsed, so anyone could make the node parse anything. Here, in this order:

1. Under ``/v1`` the caller must be within its rate limits (429 otherwise,
   :mod:`node.api.ratelimit`) and the ``Authorization: Bearer <key>`` header must name a valid
   key (401 otherwise) before a byte of the body is read; the principal is kept in the
   request's state for :func:`node.api.deps.principal`.
2. A body is read only up to its route's limit (413 at once when ``Content-Length`` says more,
   or as soon as a streamed body passes it) and within ``body_timeout_s`` (408): a client that
   sends slowly, or stops, does not hold the node.
3. A JSON body must be strict JSON: UTF-8 without a byte order mark, nested at most
   ``json_depth_max`` deep (the depth is counted before anything is parsed), no key twice in
   an object (which value a signature covered would be ambiguous), numbers a double can hold.

Each refusal is the API's error shape with a code of its own and changes nothing.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from decimal import Decimal
from itertools import accumulate
from typing import TYPE_CHECKING, Any

import anyio
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from node.api.errors import response
from node.api.ratelimit import RateLimits
from node.auth import Principal, authenticate, hash_key
from node.errors import Refusal, Refused

if TYPE_CHECKING:
    from node.services import Services

AUTHENTICATED_PREFIX = "/v1/"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
"""Methods whose body a route reads (and the guard checks as JSON); others' bodies are only bounded."""
PRINCIPAL_STATE = "principal"
"""The key under which the authenticated caller is kept in ``scope["state"]``."""
PARSED_STATE = "corridor.json"
"""The scope key of the body as the guard read it, for :class:`JsonRoute`."""

_NOT_BRACKETS = bytes(range(256)).translate(None, b"[]{}")
"""Every byte but the four brackets: deleted to count nesting."""
_STRINGS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
"""A JSON string, or an unterminated one to the end: one pass, never restarted inside a string."""
_DEPTH_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
INTEGER_DIGITS_MAX = 80
"""More than a uint256 has (78 digits): no field of the API takes a longer integer."""
_BOM = b"\xef\xbb\xbf"
INLINE_CHECK_BYTES_MAX = 65_536
"""Larger bodies are read in a worker thread (a few MB take a tenth of a second), not in the event loop."""


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """The bounds a request body must keep (each a node setting)."""

    default_bytes: int
    by_path: dict[str, int]
    """Routes whose bodies may be larger than the default (the batch route, the risk rules)."""
    timeout_s: float
    json_depth_max: int

    def for_path(self, path: str) -> int:
        return self.by_path.get(path.rstrip("/"), self.default_bytes)


class Guard:
    """The ASGI middleware; ``services`` hold the store and the keys to authenticate against."""

    def __init__(self, app: ASGIApp, services: Services, limits: BodyLimits, rates: RateLimits) -> None:
        self.app = app
        self.services = services
        self.limits = limits
        self.rates = rates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        try:
            if scope["path"].startswith(AUTHENTICATED_PREFIX):
                who = await self._admit(scope, headers)
                scope.setdefault("state", {})[PRINCIPAL_STATE] = who
            body = await self._read_body(scope, headers, receive)
            if body is None:
                return  # the client went away
            if body and scope["method"] in BODY_METHODS and _is_json(headers.get("content-type")):
                if len(body) > INLINE_CHECK_BYTES_MAX:
                    parsed = await anyio.to_thread.run_sync(read_json, body, self.limits.json_depth_max)
                else:
                    parsed = read_json(body, self.limits.json_depth_max)
                scope[PARSED_STATE] = parsed
        except Refused as refused:
            await response(refused)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _admit(self, scope: Scope, headers: Headers) -> Principal:
        """The caller, within the rate limits: 429 before any look-up when over them, 401 for a bad key."""
        address = str((scope.get("client") or ("unknown",))[0])
        header = headers.get("authorization")
        key_hash = hash_key(header or "")
        self.rates.admit(key_hash, address)
        try:
            who = await anyio.to_thread.run_sync(self._authenticate, _bearer(header))
        except Refused:
            self.rates.failed(address)
            raise
        self.rates.succeeded(key_hash)
        return who

    def _authenticate(self, key: str) -> Principal:
        svc = self.services
        with svc.store.transaction(write=False) as session:
            found = authenticate(session, key, svc.settings.operator_api_key, svc.settings.auditor_api_key)
        if found is None:
            raise Refused(Refusal.UNAUTHORIZED, "the API key is not valid")
        return found

    async def _read_body(self, scope: Scope, headers: Headers, receive: Receive) -> bytes | None:
        limit = self.limits.for_path(scope["path"])
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise Refused(Refusal.BAD_CONTENT_LENGTH, f"Content-Length {declared[:40]!r} is not a number of bytes")
            if int(declared) > limit:
                raise _too_large(limit, int(declared))
        chunks: list[bytes] = []
        size = 0
        deadline = time.monotonic() + self.limits.timeout_s
        more = True
        while more:
            try:
                with anyio.fail_after(max(0.0, deadline - time.monotonic())):
                    message = await receive()
            except TimeoutError:
                raise Refused(
                    Refusal.BODY_TIMEOUT, f"the request body did not arrive within {self.limits.timeout_s:g} s"
                ) from None
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _too_large(limit, None)
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        return b"".join(chunks)


def _bearer(header: str | None) -> str:
    if not header or not header.lower().startswith("bearer ") or not header[7:].strip():
        raise Refused(Refusal.UNAUTHORIZED, "send your API key as 'Authorization: Bearer <key>'")
    return header[7:].strip()


def _too_large(limit: int, declared: int | None) -> Refused:
    return Refused(
        Refusal.BODY_TOO_LARGE,
        f"the request body is larger than this route takes ({limit} bytes)",
        {"limit_bytes": limit, **({"content_length": declared} if declared is not None else {})},
    )


def _is_json(content_type: str | None) -> bool:
    """As FastAPI decides to parse a body as JSON: no content type, or application/json or ``+json``."""
    if not content_type:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, then the client's own messages (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def json_depth(raw: bytes) -> int:
    """How deep the arrays and objects of a JSON text nest, counted without parsing it.

    Strings are removed first (a bracket inside one does not nest); the rest is reduced to its
    brackets. A text with fewer opening brackets than the limit cannot be deeper, so the
    running count is only needed for bracket-heavy texts, and runs in C even then.
    """
    brackets = _STRINGS.sub(b"", raw).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    return max(0, max(accumulate(map(_DEPTH_STEP.__getitem__, brackets))))


def read_json(raw: bytes, depth_max: int) -> Any:
    """The body parsed, numbers with a fraction or an exponent as :class:`~decimal.Decimal`; or
    :class:`Refused` (400) if it is not strict JSON (see the module's docstring)."""
    if raw.startswith(_BOM):
        raise Refused(Refusal.MALFORMED_JSON, "the body starts with a byte order mark: send UTF-8 JSON without one")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refused(
            Refusal.MALFORMED_JSON, f"the body is not UTF-8 (byte {exc.start})", {"position": exc.start}
        ) from None
    opening = raw.count(b"[") + raw.count(b"{")
    if opening > depth_max and (depth := json_depth(raw)) > depth_max:
        raise Refused(
            Refusal.TOO_DEEP,
            f"the JSON nests {depth} levels deep; at most {depth_max} are taken",
            {"depth": depth, "depth_max": depth_max},
        )
    try:
        return json.loads(
            text, object_pairs_hook=_unique_keys, parse_float=_finite, parse_int=_integer, parse_constant=_no_constant
        )
    except Refused:
        raise
    except json.JSONDecodeError as exc:
        raise Refused(
            Refusal.MALFORMED_JSON,
            f"the body is not valid JSON: {exc.msg} at position {exc.pos}",
            {"position": exc.pos},
        ) from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer of more digits than Python converts
        raise Refused(Refusal.MALFORMED_JSON, f"the body is not JSON this API takes: {exc}") from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) == len(pairs):
        return found
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise Refused(
                Refusal.DUPLICATE_KEY, f"the key {key[:100]!r} appears twice in one object", {"key": key[:100]}
            )
        seen.add(key)
    raise AssertionError("a shorter dict has a repeated key")


def _finite(text: str) -> Decimal:
    """Exact; but only what a double could hold, as any JSON reader on the way must read it too."""
    if not math.isfinite(float(text)):
        raise Refused(Refusal.INVALID_NUMBER, f"the number {text[:40]} is out of range", {"number": text[:40]})
    return Decimal(text)


def _integer(text: str) -> int:
    if len(text) > INTEGER_DIGITS_MAX:
        raise Refused(
            Refusal.INVALID_NUMBER, f"an integer of {len(text)} digits is out of range", {"number": text[:40] + "..."}
        )
    return int(text)


def _no_constant(text: str) -> float:
    raise Refused(Refusal.MALFORMED_JSON, f"{text} is not a JSON value")


class _GuardedJsonRequest(Request):
    async def json(self) -> Any:
        if PARSED_STATE not in self.scope:
            raise RuntimeError("a JSON body reached a route without the guard's reading of it")
        return self.scope[PARSED_STATE]


class JsonRoute(APIRoute):
    """A route that takes the guard's reading of its JSON body (:func:`read_json`) rather than
    parsing it again: its numbers exact (a number with a fraction or an exponent is a
    :class:`~decimal.Decimal`, so ``25000000.0`` is the integer it says and
    ``12345678901234567891.0`` is not rounded to a double; integer fields take the integral
    ones, as JSON Schema counts ``1.0`` an integer, and refuse the rest)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def exact(request: Request) -> Response:
            return await handler(_GuardedJsonRequest(request.scope, request.receive))

        return exact
