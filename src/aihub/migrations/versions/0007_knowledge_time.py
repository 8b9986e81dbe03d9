"""Knowledge time: when aihub learned each reading and weather value, and their versions.

- ``readings`` gains ``known_at`` (epoch us, UTC) and ``quality`` (0 actual, 1 estimated,
  2 edited). It keeps holding the **current** version of each ``(asset, ts)``: the one
  with the latest ``known_at``, so the current path reads exactly what it read before.
- ``reading_versions`` holds superseded versions, written only when a value really
  changes (most readings never get one).
- ``weather`` gains ``known_at`` (a forecast's issue time, an observation's arrival) and
  keeps the current version; ``weather_versions`` holds the superseded ones.
- ``feature_exports`` gains ``options`` (origins, horizons, as_known of the request).

Rows stored before this migration are taken as known at their own valid time
(``known_at = ts``): "as known at K" sees them from their timestamp on, which is what
every feature row computed before knowledge time assumed.

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_WEATHER_FIELDS = ("temperature", "humidity", "wind_speed", "solar_irradiance", "cloud_cover")


def upgrade() -> None:
    with op.batch_alter_table("readings") as batch:
        batch.add_column(sa.Column("known_at", sa.BigInteger, nullable=True))
        batch.add_column(
            sa.Column("quality", sa.SmallInteger, nullable=False, server_default="0")
        )
    op.execute("UPDATE readings SET known_at = ts")
    op.create_table(
        "reading_versions",
        sa.Column("asset_key", sa.Integer, primary_key=True),
        sa.Column("ts", sa.BigInteger, primary_key=True),
        sa.Column("known_at", sa.BigInteger, primary_key=True),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("quality", sa.SmallInteger, nullable=False, server_default="0"),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("weather") as batch:
        batch.add_column(sa.Column("known_at", sa.BigInteger, nullable=True))
    op.execute("UPDATE weather SET known_at = ts")
    op.create_table(
        "weather_versions",
        sa.Column("tenant_id", sa.String(128), primary_key=True),
        sa.Column("location_id", sa.String(128), primary_key=True),
        sa.Column("ts", sa.BigInteger, primary_key=True),
        sa.Column("known_at", sa.BigInteger, primary_key=True),
        *(sa.Column(f, sa.Float, nullable=True) for f in _WEATHER_FIELDS),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("feature_exports") as batch:
        batch.add_column(sa.Column("options", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feature_exports") as batch:
        batch.drop_column("options")
    op.drop_table("weather_versions")
    with op.batch_alter_table("weather") as batch:
        batch.drop_column("known_at")
    op.drop_table("reading_versions")
    with op.batch_alter_table("readings") as batch:
        batch.drop_column("quality")
        batch.drop_column("known_at")
