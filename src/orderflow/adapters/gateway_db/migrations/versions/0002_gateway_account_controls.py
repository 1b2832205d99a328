"""API keys may expire; keys are found by the admin who created them (disabled or deleted); a
counter of account changes, which gateway processes follow.

Revision ID: gw0002
Revises: gw0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "gw0002"
down_revision = "gw0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gateway_api_keys") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_gateway_api_keys_created_by", "gateway_api_keys", ["created_by"])
    changes = op.create_table(
        "gateway_account_changes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("counter", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(changes, [{"id": 1, "counter": 0}])


def downgrade() -> None:
    op.drop_table("gateway_account_changes")
    op.drop_index("ix_gateway_api_keys_created_by", "gateway_api_keys")
    with op.batch_alter_table("gateway_api_keys") as batch:
        batch.drop_column("expires_at")
