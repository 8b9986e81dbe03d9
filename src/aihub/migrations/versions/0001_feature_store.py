"""Feature store: assets, readings, hourly rollups, weather, feature sets, exports.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "assets",
        sa.Column("asset_key", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.String(128), nullable=False),
        sa.Column("asset_id", sa.String(128), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
        sa.Column("country", sa.String(8), nullable=True),
        sa.Column("location_id", sa.String(128), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False, server_default="load"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_ingest_at", sa.DateTime(timezone=True), nullable=True),
        # Value of ingest_seq.seq at this asset's last ingest: the cross-process change feed.
        sa.Column("data_seq", sa.BigInteger, nullable=False, server_default="0"),
        sa.UniqueConstraint("tenant_id", "asset_id", name="uq_assets_tenant_asset"),
    )
    op.create_index("ix_assets_data_seq", "assets", ["data_seq"])
    op.create_table(
        "readings",
        sa.Column("asset_key", sa.Integer, primary_key=True),
        sa.Column("ts", sa.BigInteger, primary_key=True),  # epoch microseconds, UTC
        sa.Column("value", sa.Float, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "hourly_rollups",
        sa.Column("asset_key", sa.Integer, primary_key=True),
        sa.Column("hour", sa.BigInteger, primary_key=True),  # epoch microseconds of the hour
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("mean", sa.Float, nullable=False),
        sa.Column("std", sa.Float, nullable=True),
        sa.Column("min", sa.Float, nullable=False),
        sa.Column("max", sa.Float, nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "weather",
        sa.Column("tenant_id", sa.String(128), primary_key=True),
        sa.Column("location_id", sa.String(128), primary_key=True),
        sa.Column("ts", sa.BigInteger, primary_key=True),
        sa.Column("temperature", sa.Float, nullable=True),
        sa.Column("humidity", sa.Float, nullable=True),
        sa.Column("wind_speed", sa.Float, nullable=True),
        sa.Column("solar_irradiance", sa.Float, nullable=True),
        sa.Column("cloud_cover", sa.Float, nullable=True),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "ingest_seq",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("last_ingest_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.execute("INSERT INTO ingest_seq (id, seq) VALUES (1, 0)")
    op.create_table(
        "feature_sets",
        sa.Column("tenant_id", sa.String(128), primary_key=True),
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("features", sa.JSON, nullable=False),
        sa.Column("use_cases", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "feature_exports",
        sa.Column("export_id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(128), nullable=False),
        sa.Column("feature_set", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("asset_ids", sa.JSON, nullable=True),
        sa.Column("lookback_hours", sa.Integer, nullable=False),
        sa.Column("storage_path", sa.Text, nullable=True),
        sa.Column("row_count", sa.BigInteger, nullable=True),
        sa.Column("file_size_bytes", sa.BigInteger, nullable=True),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ix_feature_exports_tenant_created", "feature_exports", ["tenant_id", "created_at"]
    )


def downgrade() -> None:
    for table in (
        "feature_exports",
        "feature_sets",
        "ingest_seq",
        "weather",
        "hourly_rollups",
        "readings",
        "assets",
    ):
        op.drop_table(table)
