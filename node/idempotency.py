"""Stripe's ``Idempotency-Key`` semantics for every POST.

The first response to a key is stored in the same database transaction as the work it
describes, so both exist or neither does. The same key with the same request replays that
response; with a different request it is a 409. A request that fails validation stores
nothing (its transaction rolls back), so it may be retried with the same key. A key is kept
for ``idempotency_ttl_s`` (24 hours by default, as Stripe keeps them): after that the same key
is a new request, and the worker deletes expired keys in bounded batches.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from node.errors import Refusal, Refused
from node.store.models import IdempotencyRecord

KEY_LENGTH_MAX = 255
PURGE_BATCH_MAX = 1000


def request_hash(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


@dataclass(frozen=True, slots=True)
class Replay:
    status_code: int
    response: dict[str, Any]


def lookup(session: Session, principal: str, key: str | None, digest: str, ttl_s: float) -> Replay | None:
    """The stored answer to replay, or None to do the work (a 409 if the key was used for another request
    within ``ttl_s``; an older record is deleted and the request is new).

    Requests with one key are serialised: SQLite's writer lock does it for every write; on
    PostgreSQL a transaction-scoped advisory lock on the key does, so that the second of two
    concurrent requests waits for the first's commit and replays it.
    """
    if key is None:
        return None
    if session.get_bind().dialect.name == "postgresql":
        lock_id = int.from_bytes(hashlib.sha256(f"{principal}\0{key}".encode()).digest()[:8], "big", signed=True)
        session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id})
    record = session.get(IdempotencyRecord, (principal, key))
    if record is None:
        return None
    if record.created_at < dt.datetime.now(dt.UTC) - dt.timedelta(seconds=ttl_s):
        session.delete(record)
        session.flush()
        return None
    if record.request_hash != digest:
        raise Refused(
            Refusal.IDEMPOTENCY_KEY_REUSED,
            f"Idempotency-Key {key!r} was first used with a different request; use a new key for a new request",
            {"idempotency_key": key},
        )
    return Replay(record.status_code, record.response)


def remember(
    session: Session, principal: str, key: str | None, digest: str, status_code: int, response: dict[str, Any]
) -> None:
    if key is not None:
        session.add(
            IdempotencyRecord(
                principal=principal, key=key, request_hash=digest, status_code=status_code, response=response
            )
        )


def purge_expired(session: Session, ttl_s: float) -> int:
    """Delete the keys older than ``ttl_s``, the oldest :data:`PURGE_BATCH_MAX` or so at a time; returns how many."""
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=ttl_s)
    created = IdempotencyRecord.created_at
    edge = session.scalar(
        select(created).where(created < cutoff).order_by(created).offset(PURGE_BATCH_MAX - 1).limit(1)
    )
    statement = delete(IdempotencyRecord).where(created < cutoff)
    if edge is not None:
        statement = statement.where(created <= edge)
    return int(session.execute(statement).rowcount or 0)  # type: ignore[attr-defined]
