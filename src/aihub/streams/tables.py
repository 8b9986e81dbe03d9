"""The stream's own tables: dead letters and the state of cumulative registers
(migration ``0006_streams``)."""

from __future__ import annotations

import sqlalchemy as sa

from aihub.stores.sql_types import UTCDateTime

metadata = sa.MetaData()

# SQLite numbers rows only with an INTEGER primary key.
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

dead_letters = sa.Table(
    "stream_dead_letters",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    # The topic's tenant when it names a valid one; null for a topic no tenant owns.
    sa.Column("tenant_id", sa.String(128), nullable=True),
    sa.Column("topic", sa.Text, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),  # truncated, decoded leniently
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Index("ix_stream_dead_letters_tenant", "tenant_id", "id"),
)

registers = sa.Table(
    "stream_registers",
    metadata,
    sa.Column("tenant_id", sa.String(128), primary_key=True),
    sa.Column("asset_id", sa.String(128), primary_key=True),
    sa.Column("last_ts", sa.BigInteger, nullable=False),  # epoch microseconds
    sa.Column("last_total", sa.Float, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)
