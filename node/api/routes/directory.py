"""``/v1/banks`` (the directory), ``/v1/balances`` (from the chain), ``/v1/network`` and ``/v1/me``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import select

from node.api.deps import CurrentBank, CurrentPrincipal, ReadSession, ServicesDep
from node.api.guard import JsonRoute
from node.api.openapi import responses
from node.api.schemas import TRANSFER_BATCH_MAX, BalancePublic, BankPublic
from node.errors import Refusal, Refused
from node.store.models import Bank, Transfer
from settlement.chain import interface
from settlement.errors import ChainError
from settlement.money import format_minor
from settlement.typed_data import describe

router = APIRouter(prefix="/v1", tags=["directory"], route_class=JsonRoute)
log = logging.getLogger("corridor.api")


@router.get("/banks", response_model=list[BankPublic], summary="The directory of banks and liquidity providers")
def banks(session: ReadSession, _: CurrentPrincipal) -> list[BankPublic]:
    rows = session.execute(select(Bank).order_by(Bank.bic)).scalars()
    return [BankPublic.of(b) for b in rows]


@router.get(
    "/balances",
    response_model=list[BalancePublic],
    summary="Your available and escrowed balances, per currency, from the chain",
    responses=responses(Refusal.CHAIN_UNAVAILABLE),
)
def balances(session: ReadSession, who: CurrentBank, svc: ServicesDep) -> list[BalancePublic]:
    bank = session.get(Bank, who.bank_id)
    assert bank is not None
    if svc.vault is None:
        raise Refused(Refusal.CHAIN_UNAVAILABLE, "this node has no chain connection")
    out = []
    try:
        for code in bank.currencies:
            b = svc.vault.balance(bank.address, code)
            out.append(
                BalancePublic(
                    currency=code,
                    available=b.available,
                    escrowed=b.escrowed,
                    available_decimal=format_minor(b.available, code),
                    escrowed_decimal=format_minor(b.escrowed, code),
                )
            )
    except ChainError as exc:
        raise Refused(Refusal.CHAIN_UNAVAILABLE, f"the chain did not answer: {exc}") from None
    return out


class NetworkLimits(BaseModel):
    deadline_min_s: int = Field(description="an instruction's deadline is at least this far from now")
    deadline_max_s: int = Field(description="and at most this far")
    transfer_batch_max: int = Field(description="items in one POST /v1/transfers/batch")
    body_max_bytes: int = Field(description="the largest body of every POST but the two below")
    batch_body_max_bytes: int = Field(description="the largest body of POST /v1/transfers/batch")
    rules_body_max_bytes: int = Field(description="the largest body of POST /v1/admin/risk/rules")
    json_depth_max: int = Field(description="the deepest nesting of arrays and objects in a body")
    body_timeout_s: float = Field(description="a request's whole body must arrive within this")


class NetworkPublic(BaseModel):
    """What a bank needs to sign instructions for this network (EIP-712 domain) and to price them."""

    chain_id: int
    vault: str = Field(description="the EIP-712 verifyingContract; pin it in your client")
    domain: dict[str, Any] = Field(description="the EIP-712 domain, as wallets take it")
    currencies: dict[str, int] = Field(description="settled currencies and their minor-unit exponents")
    confirmations: int = Field(description="blocks deep before a settlement is FINAL")
    band_bps: int = Field(description="how far (basis points) a quote's rate may lie from the vault's reference rate")
    limits: NetworkLimits
    typed_data: str = Field(description="where the EIP-712 types, encoding rules and a worked example are")
    abi: str = Field(description="where the vault's ABI, event topics and error selectors are")


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
        band_bps=svc.manifest.band_bps,
        limits=NetworkLimits(
            deadline_min_s=svc.settings.deadline_min_s,
            deadline_max_s=svc.settings.deadline_max_s,
            transfer_batch_max=TRANSFER_BATCH_MAX,
            body_max_bytes=svc.settings.body_max_bytes,
            batch_body_max_bytes=svc.settings.batch_body_max_bytes,
            rules_body_max_bytes=svc.settings.rules_body_max_bytes,
            json_depth_max=svc.settings.json_depth_max,
            body_timeout_s=svc.settings.body_timeout_s,
        ),
        typed_data="/v1/network/typed-data",
        abi="/v1/network/abi",
    )


class TypedDataPublic(BaseModel):
    """The EIP-712 description a bank signs by (see settlement/typed_data.py for each part)."""

    domain: dict[str, Any]
    domain_separator: str
    types: dict[str, list[dict[str, str]]] = Field(description="as eth_signTypedData_v4 and eth-account take them")
    primary_types: dict[str, str]
    encode_type: dict[str, str]
    type_hashes: dict[str, str]
    instruction_fields: list[dict[str, Any]] = Field(
        description="each member of Instruction: its API field, how the API value becomes the signed one, bounds"
    )
    details_hash: dict[str, str]
    signature: dict[str, str]
    example: dict[str, Any] = Field(description="one instruction signed with a public test key, every step shown")


@router.get(
    "/network/typed-data",
    response_model=TypedDataPublic,
    summary="The EIP-712 types you sign, how each field is encoded, and a worked example",
    description=(
        "Everything needed to sign an instruction with an EIP-712 library alone (eth-account's "
        "`encode_typed_data(full_message=...)` takes `example.typed_data` as it is): the domain, the types, each "
        "API field's encoding and bounds, the details hash and the compact signature. The example is signed for "
        "this network's domain with a public test key, so a client can check its encoder offline."
    ),
)
def typed_data(svc: ServicesDep, _: CurrentPrincipal) -> TypedDataPublic:
    return TypedDataPublic(**describe(svc.domain))


class InterfacePublic(BaseModel):
    contract: str
    address: str
    chain_id: int
    events: list[dict[str, str]] = Field(description="name, signature and topic0 of each event")
    errors: list[dict[str, str]] = Field(description="name, signature and 4-byte selector of each custom error")
    abi: list[dict[str, Any]] = Field(description="the contract's ABI as the compiler wrote it")


@router.get(
    "/network/abi",
    response_model=InterfacePublic,
    summary="The vault's ABI, event topics and error selectors",
    description="For verifying on chain yourself; `scripts/deploy.py` writes the same file beside the manifest.",
)
def abi(svc: ServicesDep, _: CurrentPrincipal) -> InterfacePublic:
    return InterfacePublic(**interface("SettlementVault", svc.manifest.vault, svc.manifest.chain_id))


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
