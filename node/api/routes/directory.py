"""``/v1/banks`` (the directory) and ``/v1/balances`` (read from the chain)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from node.api.deps import CurrentBank, CurrentPrincipal, ReadSession, ServicesDep
from node.api.errors import ApiError
from node.api.schemas import BalancePublic, BankPublic
from node.store.models import Bank
from settlement.errors import ChainError
from settlement.money import format_minor

router = APIRouter(prefix="/v1", tags=["directory"])


class ChainUnavailable(ApiError):
    status_code, code = 503, "chain_unavailable"


@router.get("/banks", response_model=list[BankPublic], summary="The directory of banks and liquidity providers")
def banks(session: ReadSession, _: CurrentPrincipal) -> list[BankPublic]:
    rows = session.execute(select(Bank).order_by(Bank.bic)).scalars()
    return [BankPublic.of(b) for b in rows]


@router.get(
    "/balances",
    response_model=list[BalancePublic],
    summary="Your available and escrowed balances, per currency, from the chain",
)
def balances(session: ReadSession, who: CurrentBank, svc: ServicesDep) -> list[BalancePublic]:
    bank = session.get(Bank, who.bank_id)
    assert bank is not None
    if svc.vault is None:
        raise ChainUnavailable("this node has no chain connection")
    out = []
    try:
        for code in bank.currencies:
            b = svc.vault.balance(bank.address, code)
            out.append(BalancePublic(currency=code, available=b.available, escrowed=b.escrowed,
                                     available_decimal=format_minor(b.available, code),
                                     escrowed_decimal=format_minor(b.escrowed, code)))  # fmt: skip
    except ChainError as exc:
        raise ChainUnavailable(f"the chain did not answer: {exc}") from None
    return out
