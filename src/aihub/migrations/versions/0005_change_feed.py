"""Per-asset write locks: the change feed no longer hangs on one counter row.

``assets.data_xid`` records the PostgreSQL transaction id (``pg_current_xact_id()``) of
the last write that changed the asset, next to its ``data_seq``; change-feed readers use
it to advance only past transactions that have finished (``SqlTimeSeriesStore`` docs). On
PostgreSQL, ``data_seq`` numbers now come from the sequence ``aihub_change_seq`` (started
after the last number ``ingest_seq`` handed out, so numbers keep growing); SQLite keeps its
single writer and the ``ingest_seq`` counter, and leaves ``data_xid`` null.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("assets") as batch:
        batch.add_column(sa.Column("data_xid", sa.BigInteger, nullable=True))
    op.create_index("ix_assets_data_xid", "assets", ["data_xid"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE SEQUENCE aihub_change_seq AS bigint")
        op.execute(
            "SELECT setval('aihub_change_seq', GREATEST(seq, 1), seq > 0) "
            "FROM ingest_seq WHERE id = 1"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Back to the counter row: it continues after the last number handed out.
        op.execute(
            "UPDATE ingest_seq SET seq = GREATEST(seq, (SELECT last_value FROM "
            "aihub_change_seq)) WHERE id = 1"
        )
        op.execute("DROP SEQUENCE aihub_change_seq")
    op.drop_index("ix_assets_data_xid", "assets")
    with op.batch_alter_table("assets") as batch:
        batch.drop_column("data_xid")
