"""Export records list the parts of a dataset export (one Parquet part per partition of
assets, written by an executor's tasks): ``feature_exports.parts``, JSON, null for a
single-file export.

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("feature_exports") as batch:
        batch.add_column(sa.Column("parts", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feature_exports") as batch:
        batch.drop_column("parts")
