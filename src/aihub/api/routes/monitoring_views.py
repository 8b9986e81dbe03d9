"""Monitoring results as response bodies (shared by the monitoring and registry routes)."""

from __future__ import annotations

from aihub.api.schemas.monitoring import ComparisonPublic, Skill, VersionScore
from aihub.services.container import Services
from aihub.services.performance import Score, VersionComparison
from aihub.stores.metadata.models import ModelVersion


def skill(s: Score) -> Skill:
    return Skill(persistence=s.skill_persistence, seasonal_naive=s.skill_seasonal)


def comparison_public(c: VersionComparison) -> ComparisonPublic:
    return ComparisonPublic(common_rows=c.common_rows, versions=[
        VersionScore(model_id=v.model_id, stage=v.stage, n=s.n, mae=s.mae, rmse=s.rmse,
                     bias=s.bias, nmae=s.nmae, skill=skill(s))
        for v, s in c.versions])


def live_comparison(svc: Services, promoted: ModelVersion,
                    archived: ModelVersion | None) -> ComparisonPublic | None:
    """After a promotion to production: the promoted and the archived version on the rows
    both logged, or None when there are none."""
    if archived is None or promoted.stage != "production":
        return None
    c = svc.performance.compare([promoted, archived])
    both = len(c.versions) == 2 and c.common_rows > 0
    return comparison_public(c) if both else None
