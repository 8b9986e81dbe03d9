"""Model registry: model versions and their stage transitions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
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
        "model_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.String(128), nullable=False),
        sa.Column("model_name", sa.String(128), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        # Semver precedence as bytes (aihub.versions): bytewise order on SQLite and PG.
        sa.Column("version_order", sa.LargeBinary, nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("model_type", sa.String(128), nullable=True),
        sa.Column("framework", sa.String(32), nullable=True),
        # JSON text, encoded and decoded by the store with orjson (several times faster
        # than the JSON type's stdlib codec on the list hot path; same on both databases).
        sa.Column("meta", sa.Text, nullable=False),
        sa.Column("metrics", sa.Text, nullable=False),
        sa.Column("artifact_key", sa.Text, nullable=True),
        sa.Column("artifact_size", sa.BigInteger, nullable=True),
        sa.Column("artifact_sha256", sa.String(64), nullable=True),
        sa.Column("artifact_format", sa.String(16), nullable=True),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("artifact_uploaded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stage_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_production_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("tenant_id", "model_name", "version", name="uq_model_versions_id"),
    )
    op.create_index(
        "ix_model_versions_order",
        "model_versions",
        ["tenant_id", "model_name", sa.text("version_order DESC")],
    )
    op.create_index("ix_model_versions_stage", "model_versions", ["stage", "tenant_id"])
    # The database itself holds "at most one production version per model".
    op.create_index(
        "uq_model_versions_production",
        "model_versions",
        ["tenant_id", "model_name"],
        unique=True,
        sqlite_where=sa.text("stage = 'production'"),
        postgresql_where=sa.text("stage = 'production'"),
    )
    op.create_table(
        "model_transitions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "version_id",
            sa.Integer,
            sa.ForeignKey("model_versions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("from_stage", sa.String(16), nullable=True),
        sa.Column("to_stage", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_model_transitions_version", "model_transitions", ["version_id", "id"])


def downgrade() -> None:
    op.drop_table("model_transitions")
    op.drop_table("model_versions")
