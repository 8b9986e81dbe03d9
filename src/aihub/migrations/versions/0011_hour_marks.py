"""Knowledge marks of each hour, kept with its rollup.

``hourly_rollups`` gains what "as known at K" needs to know of an hour without reading
its readings (maintained by every ingest, like the rollup values):

- ``known_at``: the latest knowledge time of the hour's current readings. As known at any
  ``K >= known_at`` the hour is exactly its current rollup.
- ``first_known``: the earliest knowledge time of any version (current or superseded) of
  the hour's readings; NULL when it equals ``known_at`` (the usual case: one arrival). As
  known at any ``K`` before it nothing of the hour was known.
- ``quality``: bit 1 set if a current reading of the hour is estimated, bit 2 if one is
  edited (0: all actual).

This migration fills them for the hours stored before it from ``readings`` and
``reading_versions``.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

HOUR_US = 3_600_000_000
# The hour of a reading as the stores compute it (ts - ts % 1h: both truncate).
_HOUR = f"(ts / {HOUR_US} * {HOUR_US})"

_CURRENT = f"""
UPDATE hourly_rollups SET known_at = m.known_at, quality = m.quality,
    first_known = NULLIF(m.first_known, m.known_at)
FROM (SELECT asset_key, {_HOUR} AS hour, MAX(known_at) AS known_at,
             MIN(known_at) AS first_known,
             MAX(CASE WHEN quality = 1 THEN 1 ELSE 0 END)
             + 2 * MAX(CASE WHEN quality = 2 THEN 1 ELSE 0 END) AS quality
      FROM readings GROUP BY asset_key, {_HOUR}) m
WHERE hourly_rollups.asset_key = m.asset_key AND hourly_rollups.hour = m.hour
"""
_SUPERSEDED = f"""
UPDATE hourly_rollups SET first_known = NULLIF({{least}}(
        COALESCE(hourly_rollups.first_known, hourly_rollups.known_at), v.first_known),
    hourly_rollups.known_at)
FROM (SELECT asset_key, {_HOUR} AS hour, MIN(known_at) AS first_known
      FROM reading_versions GROUP BY asset_key, {_HOUR}) v
WHERE hourly_rollups.asset_key = v.asset_key AND hourly_rollups.hour = v.hour
"""


def upgrade() -> None:
    # Plain ADD COLUMN on both (no table rebuild: SQLite keeps the table WITHOUT ROWID).
    op.add_column("hourly_rollups", sa.Column("known_at", sa.BigInteger, nullable=True))
    op.add_column("hourly_rollups", sa.Column("first_known", sa.BigInteger, nullable=True))
    op.add_column(
        "hourly_rollups",
        sa.Column("quality", sa.SmallInteger, nullable=False, server_default="0"),
    )
    bind = op.get_bind()
    least = "LEAST" if bind.dialect.name == "postgresql" else "MIN"
    bind.execute(sa.text(_CURRENT))
    bind.execute(sa.text(_SUPERSEDED.format(least=least)))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN on both (SQLite >= 3.35), keeping the table as it was.
    for column in ("quality", "first_known", "known_at"):
        op.execute(f"ALTER TABLE hourly_rollups DROP COLUMN {column}")
