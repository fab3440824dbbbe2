"""``/v1/quotes``: a locked, signed FX quote a transfer can then name."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from node.api.deps import CurrentBank, IdempotencyKey, RawBody, ServicesDep
from node.api.guard import JsonRoute
from node.api.openapi import responses
from node.api.routes._idempotent import run_post
from node.api.schemas import QuoteCreate, QuotePublic
from node.errors import Refusal
from node.store.models import Quote

router = APIRouter(prefix="/v1/quotes", tags=["quotes"], route_class=JsonRoute)


@router.post(
    "",
    status_code=201,
    response_model=QuotePublic,
    summary="Lock an FX quote",
    description=(
        "Give `sell_amount` (the debtor pays exactly this, fee included) or `buy_amount` (the creditor receives "
        "exactly this), in major units as a decimal string: exactly one of the two. The answer carries the rate "
        "(18 decimals), both amounts in minor units, the fee, the liquidity provider, the expiry, the rate's source "
        "and as-of time, and the oracle's EIP-712 signature."
    ),
    responses=responses(Refusal.RATE_UNAVAILABLE, Refusal.INVALID_FX_REQUEST),
)
def create_quote(
    body: QuoteCreate, svc: ServicesDep, who: CurrentBank, request: Request, raw: RawBody, key: IdempotencyKey = None
) -> JSONResponse:
    def work(session: Session) -> dict[str, Any]:
        if body.sell_amount is not None:
            locked = svc.quotes.quote_sell(body.sell_currency, body.sell_amount, body.buy_currency)
        else:
            locked = svc.quotes.quote_buy(body.sell_currency, body.buy_currency, body.buy_amount)
        data = locked.to_dict()
        assert who.bank_id is not None
        if session.get(Quote, locked.id) is None:
            session.add(Quote(id=locked.id, bank_id=who.bank_id, body=data, expiry=locked.expiry))
        return data

    return run_post(svc, who, request, raw, key, 201, work)
