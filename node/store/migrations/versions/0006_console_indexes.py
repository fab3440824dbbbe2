"""indexes for the console's overview: transfers by creation time, history steps by state and time

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_transfers_created", "transfers", ["created_at"])
    op.create_index("ix_transfer_events_status_at", "transfer_events", ["status", "at"])


def downgrade() -> None:
    op.drop_index("ix_transfer_events_status_at", table_name="transfer_events")
    op.drop_index("ix_transfers_created", table_name="transfers")
