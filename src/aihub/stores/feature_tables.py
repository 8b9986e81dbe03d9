"""SQLAlchemy Core tables of the feature store (the schema itself lives in migrations)."""

from __future__ import annotations

import sqlalchemy as sa

from aihub.stores.sql_types import UTCDateTime

metadata = sa.MetaData()

assets = sa.Table(
    "assets",
    metadata,
    sa.Column("asset_key", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant_id", sa.String(128), nullable=False),
    sa.Column("asset_id", sa.String(128), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("country", sa.String(8)),
    sa.Column("location_id", sa.String(128)),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("last_ingest_at", UTCDateTime),
    sa.Column("data_seq", sa.BigInteger, nullable=False),
    # PostgreSQL: the transaction id of that write (the change feed, migration 0005).
    sa.Column("data_xid", sa.BigInteger),
)

ingest_seq = sa.Table(
    "ingest_seq",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("last_ingest_at", UTCDateTime),
)

feature_sets = sa.Table(
    "feature_sets",
    metadata,
    sa.Column("tenant_id", sa.String(128), primary_key=True),
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("features", sa.JSON, nullable=False),
    sa.Column("use_cases", sa.JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

feature_exports = sa.Table(
    "feature_exports",
    metadata,
    sa.Column("export_id", sa.String(36), primary_key=True),
    sa.Column("tenant_id", sa.String(128), nullable=False),
    sa.Column("feature_set", sa.String(128), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("start_time", UTCDateTime, nullable=False),
    sa.Column("end_time", UTCDateTime, nullable=False),
    sa.Column("asset_ids", sa.JSON),
    sa.Column("lookback_hours", sa.Integer, nullable=False),
    sa.Column("storage_path", sa.Text),
    sa.Column("row_count", sa.BigInteger),
    sa.Column("file_size_bytes", sa.BigInteger),
    sa.Column("message", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("completed_at", UTCDateTime),
    sa.Column("owner", sa.String(300)),  # host:pid:start of the writer (migration 0004)
    sa.Column("parts", sa.JSON),  # a dataset export's parts (migration 0008)
    sa.Column("options", sa.JSON),  # origins, horizons, as_known (migration 0007)
)
