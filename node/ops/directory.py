"""The directory of participants the node serves: onboarding a bank or a liquidity provider."""

from __future__ import annotations

from eth_utils.address import to_checksum_address
from sqlalchemy import select
from sqlalchemy.orm import Session

from node.auth import issue_bank_key
from node.errors import Refusal, Refused
from node.store.models import Bank
from settlement import money
from settlement.identifiers import bic_country, bic_problem
from settlement.lifecycle import ParticipantKind
from settlement.manifest import Manifest


def onboard(
    session: Session,
    manifest: Manifest,
    *,
    name: str,
    bic: str,
    country: str,
    address: str,
    kind: str,
    currencies: list[str],
) -> tuple[Bank, str | None]:
    """Add a participant; a bank gets an API key, returned here once (only its hash is kept)."""
    for code in currencies:
        if code not in manifest.assets:
            raise Refused(Refusal.UNKNOWN_CURRENCY, f"{code} is not settled on this network", {"field": "currencies"})
    if (problem := bic_problem(bic)) is not None:
        raise Refused(Refusal.INVALID_BIC, f"{bic} is not a BIC: {problem}", {"field": "bic"})
    if (bic_in := bic_country(bic)) != country:
        raise Refused(Refusal.BIC_COUNTRY_MISMATCH, f"BIC {bic} is for country {bic_in}, not {country}")
    address = to_checksum_address(address)
    if session.execute(select(Bank).where((Bank.bic == bic) | (Bank.address == address))).first():
        raise Refused(Refusal.BANK_EXISTS, f"a participant with BIC {bic} or address {address} exists")
    bank = Bank(
        name=name,
        bic=bic,
        country=country,
        address=address,
        kind=kind,
        frozen=False,
        currencies=[money.currency(c).code for c in currencies],
    )
    session.add(bank)
    session.flush()
    return bank, issue_bank_key(session, bank) if kind == ParticipantKind.BANK else None
