"""The OpenAPI document's account of errors: per operation and status, the codes it may answer with.

Each code, its status and meaning are in :data:`node.api.errors.CODES`; a route declares the
codes of its own with :func:`responses`, and :func:`document` adds those every route of its
kind has (a key under ``/v1``, a role, a body, parameters).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute

from node.api import deps
from node.api.errors import CODES, ERROR_SCHEMA, GUARD_CODES
from node.api.schemas import EXACT_BOUNDS
from node.errors import Refusal

_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def responses(*codes: Refusal) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses for ``codes`` (each in :data:`CODES`), one per status, each listing its codes."""
    by_status: dict[int, list[Refusal]] = {}
    for code in dict.fromkeys(codes):
        by_status.setdefault(CODES[code][0], []).append(code)
    return {
        status: {
            "description": "; ".join(f"`{c}`: {CODES[c][1]}" for c in group),
            "content": {
                "application/json": {
                    "schema": {
                        "allOf": [
                            {"$ref": "#/components/schemas/Error"},
                            {"properties": {"error": {"properties": {"code": {"enum": group}}}}},
                        ],
                    }
                }
            },
            "x-error-codes": group,
        }
        for status, group in sorted(by_status.items())
    }


def _declared(route: APIRoute) -> list[Refusal]:
    return [
        Refusal(code) for r in route.responses.values() if isinstance(r, dict) for code in r.get("x-error-codes", ())
    ]


def _role_checked(route: APIRoute) -> bool:
    roles = {deps.bank, deps.operator, deps.auditor, deps.reader, deps.auditor_or_operator}
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        if dep.call in roles:
            return True
        stack.extend(dep.dependencies)
    return False


def document(router: APIRouter) -> APIRouter:
    """Give each operation of ``router`` the error responses it may answer with: its own
    (declared with :func:`responses`), and those every route of its kind has (a key under
    ``/v1``, a body). Run before the router is included (inclusion copies its routes)."""
    for route in router.routes:
        if not isinstance(route, APIRoute):
            continue
        codes: list[Refusal] = []
        if route.path.startswith("/v1"):
            codes += [Refusal.UNAUTHORIZED, Refusal.RATE_LIMITED]
        if _role_checked(route):
            codes.append(Refusal.FORBIDDEN)
        if "POST" in (route.methods or ()):
            codes += GUARD_CODES
        if any(p.alias == "Idempotency-Key" for p in route.dependant.header_params):
            codes.append(Refusal.IDEMPOTENCY_KEY_REUSED)
        if route.body_field is not None or route.dependant.path_params or route.dependant.query_params:
            codes.append(Refusal.INVALID_REQUEST)
        codes += _declared(route)
        kept = {s: r for s, r in route.responses.items() if not (isinstance(r, dict) and "x-error-codes" in r)}
        route.responses = kept | responses(*codes)
    return router


def finish(document: dict[str, Any]) -> dict[str, Any]:
    """Add the error schema every error response refers to, and put back the exact integer bounds.

    FastAPI passes the document through its own model, whose bounds are floats: 2**112 - 1
    came out as 5.192296858534828e+33. A bank's client must see the bounds its signed types
    have, to the unit.
    """
    document.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    exact = {float(bound): bound for bound in EXACT_BOUNDS}
    stack: list[Any] = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key in _BOUNDS:
                value = node.get(key)
                if isinstance(value, float) and value.is_integer():
                    node[key] = exact.get(value, int(value))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return document
