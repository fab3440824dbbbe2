"""API keys: random bearer tokens, stored as their SHA-256, each tied to one principal.

A bank's key reaches only that bank's transfers; the operator's key the admin routes; the
auditor's key reads everything and writes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from node.store.models import ApiKey, Bank

KEY_PREFIX = "cor_"


class Role(StrEnum):
    BANK = "bank"
    OPERATOR = "operator"
    AUDITOR = "auditor"


@dataclass(frozen=True, slots=True)
class Principal:
    role: Role
    bank_id: int | None = None
    bic: str | None = None
    address: str | None = None

    @property
    def id(self) -> str:
        """Who owns an idempotency key."""
        return f"bank:{self.bank_id}" if self.role is Role.BANK else self.role.value


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def issue_bank_key(session: Session, bank: Bank) -> str:
    """A new key for ``bank``; only its hash is stored, so this is the one time it is seen."""
    key = new_api_key()
    session.add(ApiKey(key_hash=hash_key(key), role=Role.BANK.value, bank_id=bank.id))
    return key


def authenticate(session: Session, key: str, operator_key: str, auditor_key: str) -> Principal | None:
    digest = hash_key(key)
    if hmac.compare_digest(digest, hash_key(operator_key)):
        return Principal(Role.OPERATOR)
    if hmac.compare_digest(digest, hash_key(auditor_key)):
        return Principal(Role.AUDITOR)
    row = session.execute(
        select(ApiKey, Bank)
        .join(Bank, ApiKey.bank_id == Bank.id)
        .where(ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None))
    ).first()
    if row is None:
        return None
    _, bank = row
    return Principal(Role.BANK, bank.id, bank.bic, bank.address)
