"""Run a POST's work once per ``Idempotency-Key``, in one transaction with its stored response."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from node.auth import Principal
from node.idempotency import lookup, remember, request_hash
from node.services import Services

ATTEMPTS_MAX = 3


def run_post(
    svc: Services,
    who: Principal,
    request: Request,
    raw: bytes,
    key: str | None,
    status_code: int,
    work: Callable[[Session], dict[str, Any]],
) -> JSONResponse:
    digest = request_hash(request.method, request.url.path, raw)
    for attempt in range(ATTEMPTS_MAX):
        try:
            with svc.store.transaction() as session:
                replay = lookup(session, who.id, key, digest, svc.settings.idempotency_ttl_s)
                if replay is not None:
                    return JSONResponse(replay.response, replay.status_code, headers={"Idempotent-Replayed": "true"})
                result = work(session)
                remember(session, who.id, key, digest, status_code, result)
            return JSONResponse(result, status_code)
        except IntegrityError:
            # A concurrent request with the same key (or the same UETR) committed first: the
            # next attempt sees it, and replays or refuses as the rules say.
            if attempt == ATTEMPTS_MAX - 1:
                raise
    raise AssertionError("unreachable")
