"""The node's tables (SQLAlchemy 2, typed). Migrations in ``node/store/migrations`` (Alembic).

Amounts are up to 2^112 and nonces up to 2^256: more than a 64-bit column holds, and
SQLite would turn a larger NUMERIC into a float. They are stored as decimal text
(:class:`BigInt`), exact on every backend.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class BigInt(TypeDecorator[int]):
    """An arbitrary-size non-negative integer, stored as its decimal digits."""

    impl = String(80)
    cache_ok = True

    def process_bind_param(self, value: int | None, dialect: Any) -> str | None:
        return None if value is None else str(int(value))

    def process_result_value(self, value: str | None, dialect: Any) -> int | None:
        return None if value is None else int(value)


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store: use UTC")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    pass


class Bank(Base):
    """A participant in the directory: a bank (with an API key) or a liquidity provider."""

    __tablename__ = "banks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(140))
    bic: Mapped[str] = mapped_column(String(11), unique=True)
    country: Mapped[str] = mapped_column(String(2))
    address: Mapped[str] = mapped_column(String(42), unique=True)
    kind: Mapped[str] = mapped_column(String(8))
    currencies: Mapped[list[str]] = mapped_column(JSON)
    frozen: Mapped[bool] = mapped_column(Boolean, default=False)
    limits: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    """The operator's per-transfer maximum per sell currency, minor units (absent: no limit)."""
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class ApiKey(Base):
    """A bearer key, stored as its SHA-256 (the keys are 256-bit random, so a slow hash adds nothing)."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    bank_id: Mapped[int | None] = mapped_column(ForeignKey("banks.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)

    bank: Mapped[Bank | None] = relationship()


class Transfer(Base):
    """One payment instruction, as signed by its debtor bank, and where it stands."""

    __tablename__ = "transfers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    """The UETR (a UUID, lower case), chosen by the bank."""
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id"))
    nonce: Mapped[int] = mapped_column(BigInt)
    debtor: Mapped[str] = mapped_column(String(42))
    creditor: Mapped[str] = mapped_column(String(42))
    sell_currency: Mapped[str] = mapped_column(String(3))
    sell_amount: Mapped[int] = mapped_column(BigInt)
    buy_currency: Mapped[str] = mapped_column(String(3))
    min_buy_amount: Mapped[int] = mapped_column(BigInt)
    deadline: Mapped[int] = mapped_column(Integer)
    details_hash: Mapped[str] = mapped_column(String(66))
    signature_r: Mapped[str] = mapped_column(String(66))
    signature_vs: Mapped[str] = mapped_column(String(66))
    quote_id: Mapped[str | None] = mapped_column(String(66))
    status: Mapped[str] = mapped_column(String(16))
    status_reason: Mapped[str] = mapped_column(Text, default="")
    status_code: Mapped[str] = mapped_column(String(48), default="")
    """A machine-readable reason for the current status (``insufficient_funds``, ``InstructionNonceUsed``...)."""
    buy_amount: Mapped[int | None] = mapped_column(BigInt)
    fee: Mapped[int | None] = mapped_column(BigInt)
    rate: Mapped[int | None] = mapped_column(BigInt)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("escrow_batches.id"))
    """The escrow batch (and so the relayer's slot) this transfer was put in; null until then."""
    position: Mapped[int | None] = mapped_column(Integer)
    resolve_tx_id: Mapped[int | None] = mapped_column(ForeignKey("chain_txs.id"))
    """The live transaction that settles or refunds this transfer, if one was sent."""
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    events: Mapped[list[TransferEvent]] = relationship(
        back_populates="transfer", order_by="TransferEvent.id", cascade="all, delete-orphan"
    )

    __table_args__ = (
        UniqueConstraint("debtor", "nonce", name="uq_transfers_debtor_nonce"),
        Index("ix_transfers_bank_created", "bank_id", "created_at", "id"),
        Index("ix_transfers_status", "status"),
        Index("ix_transfers_batch", "batch_id"),
    )


class TransferEvent(Base):
    """One step of a transfer's history: the state it entered, when, why, and the chain's reference."""

    __tablename__ = "transfer_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    transfer_id: Mapped[str] = mapped_column(ForeignKey("transfers.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    code: Mapped[str] = mapped_column(String(48), default="")
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    block_number: Mapped[int | None] = mapped_column(Integer)
    log_index: Mapped[int | None] = mapped_column(Integer)

    transfer: Mapped[Transfer] = relationship(back_populates="events")


class Quote(Base):
    """A quote given to a bank, kept so that a transfer can name it by id."""

    __tablename__ = "quotes"

    id: Mapped[str] = mapped_column(String(66), primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id"))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    expiry: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class IdempotencyRecord(Base):
    """The first response to a POST with an ``Idempotency-Key``, replayed for the same key and body."""

    __tablename__ = "idempotency_keys"

    principal: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class Webhook(Base):
    """A bank's callback URL and the secret its deliveries are signed with (kept: it signs)."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id"), unique=True)
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class WebhookDelivery(Base):
    """One status change to POST to one bank, written in the transaction that made the change (an outbox)."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    """A UUID, sent as ``Corridor-Delivery``: receivers use it to drop a delivery they already had."""
    bank_id: Mapped[int] = mapped_column(ForeignKey("banks.id"))
    transfer_id: Mapped[str] = mapped_column(String(36))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    """pending, delivered, or failed (gave up after the last attempt)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)


class ChainTx(Base):
    """A transaction the relayer signed: kept before it is broadcast, so that a crash never loses
    or repeats it. Fee bumps re-sign the same nonce; every hash ever sent is kept for lookup."""

    __tablename__ = "chain_txs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    """escrow (an escrowBatch) or resolve (a resolveBatch: settlements and refunds)."""
    sender: Mapped[str] = mapped_column(String(42))
    nonce: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    """signed → sent → mined → confirmed; or failed (reverted) or dropped (its nonce went to another tx)."""
    tx_hash: Mapped[str] = mapped_column(String(66))
    """The hash of the latest signed version."""
    hashes: Mapped[list[str]] = mapped_column(JSON)
    raw: Mapped[str] = mapped_column(Text)
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    """The unsigned transaction (to, data, gas, fees), re-signed with higher fees to replace it."""
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    """What it does, for the watcher and the operator: transfer ids, actions, quotes."""
    bumps: Mapped[int] = mapped_column(Integer, default=0)
    block_number: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_chain_txs_status", "status"),
        Index("ix_chain_txs_sender_nonce", "sender", "nonce"),
    )


class EscrowBatch(Base):
    """Transfers escrowed together into one of the relayer's slots, in order."""

    __tablename__ = "escrow_batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    slot: Mapped[int] = mapped_column(Integer)
    escrow_tx_id: Mapped[int] = mapped_column(ForeignKey("chain_txs.id"))
    transfer_ids: Mapped[list[str]] = mapped_column(JSON)
    open: Mapped[bool] = mapped_column(Boolean, default=True)
    """True while the slot holds (or may come to hold) this batch: until every position is resolved."""
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    __table_args__ = (Index("ix_escrow_batches_open_slot", "open", "slot"),)


class ChainEvent(Base):
    """A vault event the watcher applied, once: (tx hash, log index) is unique."""

    __tablename__ = "chain_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(32))
    transfer_id: Mapped[str | None] = mapped_column(String(36), index=True)
    tx_hash: Mapped[str] = mapped_column(String(66))
    log_index: Mapped[int] = mapped_column(Integer)
    block_number: Mapped[int] = mapped_column(Integer, index=True)
    block_hash: Mapped[str] = mapped_column(String(66))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (UniqueConstraint("tx_hash", "log_index", name="uq_chain_events_tx_log"),)


class SeenBlock(Base):
    """The watcher's copy of the canonical chain's recent blocks, to notice a reorganisation."""

    __tablename__ = "seen_blocks"

    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(66))
    parent_hash: Mapped[str] = mapped_column(String(66))


class Lease(Base):
    """Leadership among node replicas: only the holder of a live lease sends and watches."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class NetworkState(Base):
    """Operator switches that hold off chain as well as on it (one row)."""

    __tablename__ = "network_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
