"""SQLAlchemy Core tables of the model registry (the schema itself lives in migration 0002)."""

from __future__ import annotations

import sqlalchemy as sa

from aihub.stores.sql_types import UTCDateTime

metadata = sa.MetaData()

model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant_id", sa.String(128), nullable=False),
    sa.Column("model_name", sa.String(128), nullable=False),
    sa.Column("version", sa.String(128), nullable=False),
    sa.Column("version_order", sa.LargeBinary, nullable=False),
    sa.Column("stage", sa.String(16), nullable=False),
    sa.Column("model_type", sa.String(128)),
    sa.Column("framework", sa.String(32)),
    sa.Column("meta", sa.Text, nullable=False),  # JSON text (orjson), see migration 0002
    sa.Column("metrics", sa.Text, nullable=False),
    sa.Column("artifact_key", sa.Text),
    sa.Column("artifact_size", sa.BigInteger),
    sa.Column("artifact_sha256", sa.String(64)),
    sa.Column("artifact_format", sa.String(16)),
    sa.Column("registered_at", UTCDateTime, nullable=False),
    sa.Column("artifact_uploaded_at", UTCDateTime),
    sa.Column("stage_changed_at", UTCDateTime, nullable=False),
    sa.Column("first_production_at", UTCDateTime),
)

model_transitions = sa.Table(
    "model_transitions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("version_id", sa.Integer, sa.ForeignKey(model_versions.c.id, ondelete="CASCADE"),
              nullable=False),
    sa.Column("from_stage", sa.String(16)),
    sa.Column("to_stage", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("at", UTCDateTime, nullable=False),
)
