"""The identifiers of parties, checked one way everywhere: BICs (ISO 9362) with schwifty, which
knows the structure and the ISO 3166 country codes.

Corridor takes a BIC as banks write it in messages: upper case, 8 or 11 characters, no spaces.
"""

from __future__ import annotations

from schwifty import BIC
from schwifty.exceptions import SchwiftyException

BIC_PATTERN = r"^[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?$"
"""The shape of a BIC, for schemas that publish it (the check is :func:`bic_problem`)."""


def bic_problem(text: str) -> str | None:
    """Why ``text`` is not a BIC Corridor takes, or None when it is one."""
    if len(text) not in (8, 11) or not text.isalnum() or not text.isupper():
        return "8 or 11 characters, upper-case letters and digits"
    try:
        BIC(text)
    except SchwiftyException as exc:
        return str(exc)
    return None


def bic_country(bic: str) -> str:
    """The ISO 3166 country code of a BIC (which :func:`bic_problem` accepted)."""
    return str(BIC(bic).country_code)
