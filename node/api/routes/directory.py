"""``/v1/banks`` (the directory), ``/v1/balances`` (from the chain), ``/v1/network`` and ``/v1/me``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import select

from node.api.deps import CurrentBank, CurrentPrincipal, ReadSession, ServicesDep
from node.api.errors import ApiError
from node.api.schemas import BalancePublic, BankPublic
from node.store.models import Bank, Transfer
from settlement.errors import ChainError
from settlement.money import format_minor

router = APIRouter(prefix="/v1", tags=["directory"])
log = logging.getLogger("corridor.api")


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


class NetworkPublic(BaseModel):
    """What a bank needs to sign instructions for this network (EIP-712 domain) and to price them."""

    chain_id: int
    vault: str = Field(description="the EIP-712 verifyingContract; pin it in your client")
    domain: dict[str, Any] = Field(description="the EIP-712 domain, as wallets take it")
    currencies: dict[str, int] = Field(description="settled currencies and their minor-unit exponents")
    confirmations: int = Field(description="blocks deep before a settlement is FINAL")


class MePublic(BaseModel):
    bank: BankPublic
    next_nonce: int = Field(
        description="above every nonce your transfers used and every one spent on chain: it and those after it are free"
    )


@router.get("/network", response_model=NetworkPublic, summary="Chain, vault and EIP-712 domain of this network")
def network(svc: ServicesDep, _: CurrentPrincipal) -> NetworkPublic:
    return NetworkPublic(
        chain_id=svc.manifest.chain_id,
        vault=svc.manifest.vault,
        domain=svc.domain.as_dict(),
        currencies={code: a.decimals for code, a in svc.manifest.assets.items()},
        confirmations=svc.settings.confirmations,
    )


NONCE_WORDS_SCANNED_MAX = 16


@router.get("/me", response_model=MePublic, summary="Your bank's directory entry and a free nonce")
def me(session: ReadSession, who: CurrentBank, svc: ServicesDep) -> MePublic:
    bank = session.get(Bank, who.bank_id)
    assert bank is not None
    # Nonces are stored as decimal text; the largest is found in Python over the bank's rows.
    nonces = session.scalars(select(Transfer.nonce).where(Transfer.bank_id == bank.id))
    candidate = max(nonces, default=-1) + 1
    if svc.vault is not None:
        # Nonces spent on chain outside this node (invalidated, or sent through another node)
        # are skipped: the answer is above the highest bit set in the vault's bitmap, so that
        # the nonces after it (a client counts on from here) are free too. Words are read
        # until the first empty one, at most NONCE_WORDS_SCANNED_MAX.
        try:
            for word in range(candidate >> 8, (candidate >> 8) + NONCE_WORDS_SCANNED_MAX):
                bits = int(svc.vault.contract.functions.nonceBitmap(bank.address, word).call())
                if bits == 0:
                    break
                candidate = max(candidate, (word << 8) + bits.bit_length())
        except Exception as exc:  # the chain is a refinement here; without it the store's figure stands
            log.warning("nonce bitmap unreadable, answering from the store: %s", exc)
    return MePublic(bank=BankPublic.of(bank), next_nonce=candidate)
