"""ISO 20022 documents received (pacs.008), kept beside the transfer each became; the format a
bank's webhook deliveries take (JSON or ISO 20022)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "iso_documents",
        sa.Column("transfer_id", sa.String(length=36), nullable=False),
        sa.Column("message", sa.String(length=32), nullable=False),
        sa.Column("msg_id", sa.String(length=35), nullable=False),
        sa.Column("end_to_end_id", sa.String(length=35), nullable=False),
        sa.Column("tx_id", sa.String(length=35), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("xml", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["transfer_id"], ["transfers.id"]),
        sa.PrimaryKeyConstraint("transfer_id"),
    )
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("format", sa.String(length=16), nullable=False, server_default="json"))


def downgrade() -> None:
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.drop_column("format")
    op.drop_table("iso_documents")
