"""The node's tables (SQLAlchemy 2, typed). Migrations in ``node/store/migrations`` (Alembic);
the column types in :mod:`node.store.types`."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from node.store.types import Base as Base  # re-exported: the migrations read the metadata through this module
from node.store.types import BigInt, UtcDateTime, utcnow


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
    frozen_on_chain: Mapped[bool] = mapped_column(Boolean, default=False)
    """What the vault was last confirmed to hold; the worker sends ``setFrozen`` while it differs from ``frozen``."""
    switch_tx_id: Mapped[int | None] = mapped_column(Integer)
    """The operator's live ``setFrozen`` transaction for this bank, if one is in flight."""
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
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    """The beneficiary and remittance details the bank sent with the instruction (their hash is signed)."""
    beneficiary_key: Mapped[str | None] = mapped_column(String(64))
    """Who is paid, for "new beneficiary" rules: a hash of the creditor bank and the beneficiary's account."""
    large_new: Mapped[bool] = mapped_column(Boolean, default=False)
    """Counted by the risk engine as a large transfer to a beneficiary the bank had not paid before."""
    review: Mapped[str | None] = mapped_column(String(16))
    """pending (escrowed and held for the operator), approved or rejected; null: never held."""
    review_code: Mapped[str] = mapped_column(String(48), default="")
    review_reason: Mapped[str] = mapped_column(Text, default="")
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    events: Mapped[list[TransferEvent]] = relationship(
        back_populates="transfer", order_by="TransferEvent.id", viewonly=True
    )
    """The history, read only: its rows are inserted together with the change they record
    (:class:`node.transitions.Transitions`), and a transfer is never deleted."""

    __table_args__ = (
        UniqueConstraint("debtor", "nonce", name="uq_transfers_debtor_nonce"),
        Index("ix_transfers_bank_created", "bank_id", "created_at", "id"),
        Index("ix_transfers_status", "status"),
        Index("ix_transfers_batch", "batch_id"),
        Index("ix_transfers_review", "review"),
        Index("ix_transfers_beneficiary", "bank_id", "beneficiary_key"),
        Index("ix_transfers_created", "created_at"),
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

    transfer: Mapped[Transfer] = relationship(back_populates="events", viewonly=True)

    __table_args__ = (Index("ix_transfer_events_status_at", "status", "at"),)


class IsoDocument(Base):
    """An ISO 20022 document a bank submitted, as received, beside the transfer it became: the
    record of what was asked, and what tells a resubmission (the same bytes) from a second
    document under the same UETR."""

    __tablename__ = "iso_documents"

    transfer_id: Mapped[str] = mapped_column(ForeignKey("transfers.id"), primary_key=True)
    message: Mapped[str] = mapped_column(String(32))
    msg_id: Mapped[str] = mapped_column(String(35))
    end_to_end_id: Mapped[str] = mapped_column(String(35))
    tx_id: Mapped[str | None] = mapped_column(String(35))
    sha256: Mapped[str] = mapped_column(String(64))
    xml: Mapped[str] = mapped_column(Text)
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


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
    format: Mapped[str] = mapped_column(String(16), default="json", server_default="json")
    """``json``, or ``iso20022``: a status change as its pacs.002 (to the debtor bank)."""
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class WebhookDelivery(Base):
    """One status change to POST to one bank, written in the transaction that made the change (an outbox)."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    """A UUID, sent as ``Corridor-Delivery``: receivers use it to drop a delivery they already had."""
    bank_id: Mapped[int | None] = mapped_column(ForeignKey("banks.id"))
    """The bank it goes to; null: the operator's webhook (``CORRIDOR_NODE_OPERATOR_WEBHOOK_URL``)."""
    transfer_id: Mapped[str | None] = mapped_column(String(36))
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
    epoch: Mapped[int] = mapped_column(BigInteger, default=1)
    """Raised by one each time the lease changes hands: the fencing token every pipeline write checks."""
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class NetworkState(Base):
    """Operator switches that hold off chain as well as on it (one row)."""

    __tablename__ = "network_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    paused_on_chain: Mapped[bool] = mapped_column(Boolean, default=False)
    switch_tx_id: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class RiskRulesVersion(Base):
    """A rules document the operator loaded; the newest is in force on every replica."""

    __tablename__ = "risk_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    text: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(300))
    actor: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class AuditEntry(Base):
    """One entry of the hash-chained audit log (see :mod:`settlement.audit_log`)."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(40))
    """ISO 8601 UTC, as hashed."""
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(48))
    subject: Mapped[str] = mapped_column(String(80))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class ReconciliationRun(Base):
    __tablename__ = "reconciliation_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    trigger: Mapped[str] = mapped_column(String(16))
    """schedule (the worker's job) or operator (``corridor reconcile``, the admin API)."""
    started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    block: Mapped[int | None] = mapped_column(Integer)
    checked: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    mismatches: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(Text, default="")


class Mismatch(Base):
    """A difference between the store and the chain; kept open while runs keep finding it, never fixed here."""

    __tablename__ = "reconciliation_mismatches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(120))
    expected: Mapped[str] = mapped_column(Text)
    found: Mapped[str] = mapped_column(Text)
    detail: Mapped[str] = mapped_column(Text)
    first_run_id: Mapped[int] = mapped_column(Integer)
    last_run_id: Mapped[int] = mapped_column(Integer)
    first_seen_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    cleared_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    """When a run first no longer found it (whoever corrected it); null while open."""

    __table_args__ = (Index("ix_reconciliation_mismatches_open", "cleared_at", "key"),)
