"""A pacs.008 credit transfer between two demo banks, for the tests to vary."""

from __future__ import annotations

import dataclasses
from typing import Any

from node.bank.iso20022 import CreditTransfer, Party


def credit_transfer(**over: Any) -> CreditTransfer:
    """2,500.00 USD from FATLUS33 to a EUR account at RHNLDEFF, worst rate 0.85, nonce 7."""
    t = CreditTransfer(
        debtor_agent="FATLUS33",
        creditor_agent="RHNLDEFF",
        amount="2500.00",
        currency="USD",
        creditor_currency="EUR",
        rate="0.85",
        nonce=7,
        debtor=Party("John Smith", "US", account="000123456789"),
        creditor=Party("Erika Mustermann", "DE", iban="DE89370400440532013000"),
        remittance="invoice 42",
    )
    return dataclasses.replace(t, **over)
