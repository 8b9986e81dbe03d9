"""Streaming ingest: dead letters and the state of cumulative registers.

``stream_dead_letters`` keeps each message (or element of one) the stream could not
store: topic, truncated payload, reason, time. ``stream_registers`` keeps, per asset, the
last total a ``total_increasing`` register reported, so a restart converts the next
total into an interval without counting anything twice.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stream_dead_letters",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.String(128), nullable=True),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_stream_dead_letters_tenant", "stream_dead_letters",
                    ["tenant_id", "id"])
    op.create_table(
        "stream_registers",
        sa.Column("tenant_id", sa.String(128), primary_key=True),
        sa.Column("asset_id", sa.String(128), primary_key=True),
        sa.Column("last_ts", sa.BigInteger, nullable=False),
        sa.Column("last_total", sa.Float, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("stream_registers")
    op.drop_index("ix_stream_dead_letters_tenant", "stream_dead_letters")
    op.drop_table("stream_dead_letters")
