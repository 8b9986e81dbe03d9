"""Forecast monitoring: the prediction log, served features, shadow flags, export references.

``prediction_log`` holds one row per ``(version, asset, origin, target)`` (instants as
epoch microseconds, like ``hourly_rollups.hour``) with the actual ``L(T)`` and the two
baselines (persistence ``L(O-1h)``, seasonal naive ``L(T-168h)``) kept beside the
prediction, refreshed by every ingest that changes those hours: scoring is then one scan,
never a join with the rollups. On PostgreSQL the table is partitioned by month of the
target (partitions are created by the writer as months come; purge drops whole months),
so retention is a metadata operation and a target window reads only its months.

``prediction_scores`` holds the sums scores are made of per ``(version, target hour,
horizon)`` (summed over assets), recomputed in the background for the days
``score_days`` marks as changed (``gen`` > ``clean_gen``): scoring a long window reads
these sums for clean days and the log itself only for changed ones.

Revision ID: 0009
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_PG_LOG = """
CREATE TABLE prediction_log (
    version_id integer NOT NULL,
    asset_id varchar(128) NOT NULL,
    origin bigint NOT NULL,
    target bigint NOT NULL,
    horizon smallint NOT NULL,
    prediction double precision NOT NULL,
    actual double precision,
    persistence double precision,
    seasonal double precision,
    logged_at bigint NOT NULL,
    source varchar(16) NOT NULL,
    PRIMARY KEY (version_id, asset_id, origin, target)
) PARTITION BY RANGE (target)
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_LOG)
    else:
        op.create_table(
            "prediction_log",
            sa.Column("version_id", sa.Integer, primary_key=True),
            sa.Column("asset_id", sa.String(128), primary_key=True),
            sa.Column("origin", sa.BigInteger, primary_key=True),
            sa.Column("target", sa.BigInteger, primary_key=True),
            sa.Column("horizon", sa.SmallInteger, nullable=False),
            sa.Column("prediction", sa.Float, nullable=False),
            sa.Column("actual", sa.Float),
            sa.Column("persistence", sa.Float),
            sa.Column("seasonal", sa.Float),
            sa.Column("logged_at", sa.BigInteger, nullable=False),
            sa.Column("source", sa.String(16), nullable=False),
            sqlite_with_rowid=False,
        )
        op.create_index("ix_prediction_log_target", "prediction_log", ["target"])
    sums = [sa.Column(c, sa.BigInteger, nullable=False)
            for c in ("predicted", "n", "nape", "np", "ns")]
    sums += [sa.Column(c, sa.Float, nullable=True)
             for c in ("sae", "se2", "se", "sa", "sape", "saep", "sabp", "saes", "sabs")]
    op.create_table(
        "prediction_scores",
        sa.Column("version_id", sa.Integer, primary_key=True),
        sa.Column("target", sa.BigInteger, primary_key=True),
        sa.Column("horizon", sa.SmallInteger, primary_key=True),
        *sums,
    )
    op.create_table(
        "score_days",
        sa.Column("version_id", sa.Integer, primary_key=True),
        sa.Column("day", sa.Integer, primary_key=True),  # days since 1970-01-01 (UTC)
        sa.Column("gen", sa.BigInteger, nullable=False),
        sa.Column("clean_gen", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_score_days_dirty", "score_days", ["gen", "clean_gen"])
    op.create_table(
        "served_features",
        sa.Column("version_id", sa.Integer, primary_key=True),
        sa.Column("asset_id", sa.String(128), primary_key=True),
        sa.Column("origin", sa.BigInteger, primary_key=True),
        sa.Column("target", sa.BigInteger, primary_key=True),
        sa.Column("features", sa.Text, nullable=False),
    )
    op.create_index("ix_served_features_target", "served_features", ["target"])
    op.create_table(
        "model_shadows",
        sa.Column("version_id", sa.Integer, primary_key=True),
        sa.Column("enabled_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("feature_exports") as batch:
        batch.add_column(sa.Column("reference", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feature_exports") as batch:
        batch.drop_column("reference")
    op.drop_table("model_shadows")
    op.drop_index("ix_score_days_dirty", "score_days")
    op.drop_table("score_days")
    op.drop_table("prediction_scores")
    op.drop_index("ix_served_features_target", "served_features")
    op.drop_table("served_features")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE prediction_log CASCADE")
    else:
        op.drop_index("ix_prediction_log_target", "prediction_log")
        op.drop_table("prediction_log")
