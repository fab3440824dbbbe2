"""pipeline: chain transactions, escrow batches, applied events, seen blocks, webhook
deliveries, leases, per-bank limits

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chain_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("transfer_id", sa.String(length=36), nullable=True),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("block_number", sa.Integer(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tx_hash", "log_index", name="uq_chain_events_tx_log"),
    )
    with op.batch_alter_table("chain_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_chain_events_block_number"), ["block_number"], unique=False)
        batch_op.create_index(batch_op.f("ix_chain_events_transfer_id"), ["transfer_id"], unique=False)

    op.create_table(
        "chain_txs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("sender", sa.String(length=42), nullable=False),
        sa.Column("nonce", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("hashes", sa.JSON(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("bumps", sa.Integer(), nullable=False),
        sa.Column("block_number", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("chain_txs", schema=None) as batch_op:
        batch_op.create_index("ix_chain_txs_sender_nonce", ["sender", "nonce"], unique=False)
        batch_op.create_index("ix_chain_txs_status", ["status"], unique=False)

    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "seen_blocks",
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.String(length=66), nullable=False),
        sa.Column("parent_hash", sa.String(length=66), nullable=False),
        sa.PrimaryKeyConstraint("number"),
    )
    op.create_table(
        "escrow_batches",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("escrow_tx_id", sa.Integer(), nullable=False),
        sa.Column("transfer_ids", sa.JSON(), nullable=False),
        sa.Column("open", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["escrow_tx_id"],
            ["chain_txs.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("escrow_batches", schema=None) as batch_op:
        batch_op.create_index("ix_escrow_batches_open_slot", ["open", "slot"], unique=False)

    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("bank_id", sa.Integer(), nullable=False),
        sa.Column("transfer_id", sa.String(length=36), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["bank_id"],
            ["banks.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_deliveries_due", ["status", "next_attempt_at"], unique=False)

    with op.batch_alter_table("transfer_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("code", sa.String(length=48), nullable=False, server_default=""))

    with op.batch_alter_table("banks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("limits", sa.JSON(), nullable=False, server_default="{}"))

    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status_code", sa.String(length=48), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("batch_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("position", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("resolve_tx_id", sa.Integer(), nullable=True))
        batch_op.create_index("ix_transfers_batch", ["batch_id"], unique=False)
        batch_op.create_foreign_key("fk_transfers_batch", "escrow_batches", ["batch_id"], ["id"])
        batch_op.create_foreign_key("fk_transfers_resolve_tx", "chain_txs", ["resolve_tx_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.drop_constraint("fk_transfers_resolve_tx", type_="foreignkey")
        batch_op.drop_constraint("fk_transfers_batch", type_="foreignkey")
        batch_op.drop_index("ix_transfers_batch")
        batch_op.drop_column("resolve_tx_id")
        batch_op.drop_column("position")
        batch_op.drop_column("batch_id")
        batch_op.drop_column("status_code")

    with op.batch_alter_table("transfer_events", schema=None) as batch_op:
        batch_op.drop_column("code")

    with op.batch_alter_table("banks", schema=None) as batch_op:
        batch_op.drop_column("limits")

    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_deliveries_due")

    op.drop_table("webhook_deliveries")
    with op.batch_alter_table("escrow_batches", schema=None) as batch_op:
        batch_op.drop_index("ix_escrow_batches_open_slot")

    op.drop_table("escrow_batches")
    op.drop_table("seen_blocks")
    op.drop_table("leases")
    with op.batch_alter_table("chain_txs", schema=None) as batch_op:
        batch_op.drop_index("ix_chain_txs_status")
        batch_op.drop_index("ix_chain_txs_sender_nonce")

    op.drop_table("chain_txs")
    with op.batch_alter_table("chain_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chain_events_transfer_id"))
        batch_op.drop_index(batch_op.f("ix_chain_events_block_number"))

    op.drop_table("chain_events")
