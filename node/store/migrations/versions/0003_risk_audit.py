"""risk rules, review holds, beneficiaries, switches mirrored on chain, the hash-chained audit
log, reconciliation runs and mismatches, operator webhook deliveries

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "risk_rules",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", sa.String(length=40), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=48), nullable=False),
        sa.Column("subject", sa.String(length=80), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_table(
        "reconciliation_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("block", sa.Integer(), nullable=True),
        sa.Column("checked", sa.JSON(), nullable=False),
        sa.Column("mismatches", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "reconciliation_mismatches",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=120), nullable=False),
        sa.Column("expected", sa.Text(), nullable=False),
        sa.Column("found", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("first_run_id", sa.Integer(), nullable=False),
        sa.Column("last_run_id", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("reconciliation_mismatches", schema=None) as batch_op:
        batch_op.create_index("ix_reconciliation_mismatches_open", ["cleared_at", "key"], unique=False)

    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("details", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("beneficiary_key", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("large_new", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("review", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("review_code", sa.String(length=48), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("review_reason", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_transfers_review", ["review"], unique=False)
        batch_op.create_index("ix_transfers_beneficiary", ["bank_id", "beneficiary_key"], unique=False)

    with op.batch_alter_table("banks", schema=None) as batch_op:
        batch_op.drop_column("limits")
        batch_op.add_column(sa.Column("frozen_on_chain", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("switch_tx_id", sa.Integer(), nullable=True))

    with op.batch_alter_table("network_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("paused_on_chain", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("switch_tx_id", sa.Integer(), nullable=True))

    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.alter_column("bank_id", existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column("transfer_id", existing_type=sa.String(length=36), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.alter_column("transfer_id", existing_type=sa.String(length=36), nullable=False)
        batch_op.alter_column("bank_id", existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table("network_state", schema=None) as batch_op:
        batch_op.drop_column("switch_tx_id")
        batch_op.drop_column("paused_on_chain")
    with op.batch_alter_table("banks", schema=None) as batch_op:
        batch_op.drop_column("switch_tx_id")
        batch_op.drop_column("frozen_on_chain")
        batch_op.add_column(sa.Column("limits", sa.JSON(), nullable=False, server_default="{}"))
    with op.batch_alter_table("transfers", schema=None) as batch_op:
        batch_op.drop_index("ix_transfers_beneficiary")
        batch_op.drop_index("ix_transfers_review")
        for column in (
            "reviewed_at",
            "review_reason",
            "review_code",
            "review",
            "large_new",
            "beneficiary_key",
            "details",
        ):
            batch_op.drop_column(column)
    with op.batch_alter_table("reconciliation_mismatches", schema=None) as batch_op:
        batch_op.drop_index("ix_reconciliation_mismatches_open")
    for table in ("reconciliation_mismatches", "reconciliation_runs", "audit_log", "risk_rules"):
        op.drop_table(table)
