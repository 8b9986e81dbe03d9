"""API keys (hashed, tenant-scoped, with a role) and export ownership.

``feature_exports.owner`` records ``host:pid:start`` of the process writing an export, so a
``running`` export whose process died is reported ``failed`` instead of running forever.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
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
        "api_keys",
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("tenants", sa.JSON, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    with op.batch_alter_table("feature_exports") as batch:
        batch.add_column(sa.Column("owner", sa.String(300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feature_exports") as batch:
        batch.drop_column("owner")
    op.drop_table("api_keys")
