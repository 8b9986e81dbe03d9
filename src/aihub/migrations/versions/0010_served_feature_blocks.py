"""Served features in blocks (one per version and write of the prediction log) instead of
one row per logged prediction: ``served_feature_blocks`` (see
``aihub/stores/metadata/served_features.py``). The rows of ``served_features`` move into
blocks of at most 100,000 rows per version, by target; the downgrade moves them back
(the newest block's row of a key wins, as readers see it).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

import polars as pl
import sqlalchemy as sa
from alembic import op

from aihub.stores.metadata.served_features import SCHEMA, decode, encode

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_BLOCK_ROWS = 100_000


def upgrade() -> None:
    op.create_table(
        "served_feature_blocks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                  primary_key=True, autoincrement=True),
        sa.Column("version_id", sa.Integer, nullable=False),
        sa.Column("first_target", sa.BigInteger, nullable=False),
        sa.Column("last_target", sa.BigInteger, nullable=False),
        sa.Column("n_rows", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_served_feature_blocks_span", "served_feature_blocks",
                    ["version_id", "last_target"])
    conn = op.get_bind()
    versions = [int(v) for (v,) in conn.execute(sa.text(
        "SELECT DISTINCT version_id FROM served_features ORDER BY version_id"))]
    insert = sa.text(
        "INSERT INTO served_feature_blocks (version_id, first_target, last_target, n_rows, "
        "data) VALUES (:v, :a, :b, :n, :d)")
    for version_id in versions:
        rows = conn.execute(sa.text(
            "SELECT asset_id, origin, target, features FROM served_features "
            "WHERE version_id = :v ORDER BY target, asset_id, origin"), {"v": version_id})
        while chunk := rows.fetchmany(_BLOCK_ROWS):
            frame = pl.DataFrame([tuple(r) for r in chunk], schema=SCHEMA, orient="row")
            conn.execute(insert, {"v": version_id, "a": int(frame["target"][0]),
                                  "b": int(frame["target"][-1]), "n": frame.height,
                                  "d": encode(frame)})
    op.drop_index("ix_served_features_target", "served_features")
    op.drop_table("served_features")


def downgrade() -> None:
    op.create_table(
        "served_features",
        sa.Column("version_id", sa.Integer, primary_key=True),
        sa.Column("asset_id", sa.String(128), primary_key=True),
        sa.Column("origin", sa.BigInteger, primary_key=True),
        sa.Column("target", sa.BigInteger, primary_key=True),
        sa.Column("features", sa.Text, nullable=False),
    )
    op.create_index("ix_served_features_target", "served_features", ["target"])
    conn = op.get_bind()
    upsert = sa.text(
        "INSERT INTO served_features (version_id, asset_id, origin, target, features) "
        "VALUES (:v, :asset_id, :origin, :target, :features) "
        "ON CONFLICT (version_id, asset_id, origin, target) "
        "DO UPDATE SET features = excluded.features")
    ids = [int(i) for (i,) in conn.execute(sa.text(
        "SELECT id FROM served_feature_blocks ORDER BY id"))]
    for block_id in ids:  # oldest first: a newer block's row of a key replaces an older's
        version_id, data = conn.execute(sa.text(
            "SELECT version_id, data FROM served_feature_blocks WHERE id = :i"),
            {"i": block_id}).one()
        rows = decode(data).to_dicts()
        conn.execute(upsert, [{"v": int(version_id), **r} for r in rows])
    op.drop_index("ix_served_feature_blocks_span", "served_feature_blocks")
    op.drop_table("served_feature_blocks")
