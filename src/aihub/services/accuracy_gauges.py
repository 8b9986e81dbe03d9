"""Refreshes the forecast accuracy gauges (``aihub.metrics``) in the background: mae,
nmae and skill of every production and shadow version over the logged forecasts of the
last 7 days, per horizon bucket (0, 1-6, 7-24, 25-48, 49-168 hours: bounded labels)."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from aihub.metrics import set_forecast_scores
from aihub.services.background import PeriodicTask
from aihub.services.performance import PerformanceService
from aihub.stores.metadata.models import ModelVersion, VersionFilter
from aihub.stores.metadata.predictions import model_shadows
from aihub.stores.model_tables import model_versions
from aihub.timeutil import utcnow

WINDOW = timedelta(days=7)


class AccuracyGauges(PeriodicTask):
    name = "aihub-accuracy-gauges"

    def __init__(self, performance: PerformanceService, interval: float) -> None:
        super().__init__(interval, first_delay=min(interval, 5.0))
        self.performance = performance

    def watched(self) -> list[tuple[ModelVersion, str]]:
        """Every production version, and every staging version marked as a shadow."""
        registry = self.performance.registry
        production, _ = registry.list(VersionFilter(stage="production"), limit=10_000,
                                      offset=0)
        with self.performance.engine.connect() as conn:
            ids = {int(r[0]) for r in conn.execute(
                sa.select(model_shadows.c.version_id).join(
                    model_versions, model_versions.c.id == model_shadows.c.version_id)
                .where(model_versions.c.stage == "staging"))}
        staging, _ = registry.list(VersionFilter(stage="staging"), limit=10_000, offset=0)
        return [(v, "production") for v in production] + \
            [(v, "shadow") for v in staging if v.id in ids]

    def run_once(self) -> None:
        end = utcnow()
        rows = []
        for version, role in self.watched():
            p = self.performance.of_version(version, start=end - WINDOW, end=end,
                                            group_by="bucket")
            for g in p.groups:
                labels = (f"{version.tenant_id}:{version.model_name}", version.version, role,
                          str(g.key))
                rows.append((labels, {"mae": g.mae, "nmae": g.nmae,
                                      "skill_persistence": g.skill_persistence,
                                      "skill_seasonal_naive": g.skill_seasonal}))
        set_forecast_scores(rows)
