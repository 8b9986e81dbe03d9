"""Scores of logged forecasts against their actuals (DESIGN.md "Forecast monitoring").

Every logged row carries its actual ``L(T)`` and baselines (kept current by ingest), and
the sums scores are made of are kept per ``(version, target hour, horizon)``
(``stores/metadata/prediction_scores.py``): a score adds those sums for the days whose
sums are current and aggregates the log rows of the days changed since, all in SQL. With
``e = prediction - actual``: mae, rmse, bias, nmae and nrmse (over mean |actual|), mape
over rows with |actual| > 1e-9 (``mape_n`` of them), and skill ``1 - mae / mae_baseline``
against persistence ``L(O-1h)`` and seasonal naive ``L(T-168h)``, each over the rows where
that baseline exists. Grouping by asset reads the log rows (the sums have no asset).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from aihub.errors import InvalidInput, NotFound
from aihub.services.registry import RegistryService
from aihub.stores.metadata.models import ModelVersion, VersionFilter
from aihub.stores.metadata.prediction_scores import (
    DAY_US,
    ROW_SUMS,
    STORED_SUMS,
    ScoreStore,
    add_sums,
    empty_sums,
)
from aihub.timeutil import to_us

GROUP_BY = ("none", "horizon", "asset", "day")
HORIZON_BUCKETS = ("0", "1-6", "7-24", "25-48", "49-168")
_KEYS = {"none": "0", "horizon": "horizon", "asset": "asset_id",
         "day": f"(target / {DAY_US})",
         # bounded labels for the gauges (``bucket`` is not offered by the API)
         "bucket": "(CASE WHEN horizon = 0 THEN '0' WHEN horizon <= 6 THEN '1-6' "
                   "WHEN horizon <= 24 THEN '7-24' WHEN horizon <= 48 THEN '25-48' "
                   "ELSE '49-168' END)"}


@dataclass(frozen=True, slots=True)
class Score:
    key: int | str | None
    predicted: int
    n: int
    mae: float | None
    rmse: float | None
    bias: float | None
    nmae: float | None
    nrmse: float | None
    mape: float | None
    mape_n: int
    skill_persistence: float | None
    skill_seasonal: float | None


@dataclass(frozen=True, slots=True)
class Performance:
    version: ModelVersion
    start: datetime | None
    end: datetime | None
    group_by: str
    predicted: int
    with_actual: int
    groups: list[Score]


@dataclass(frozen=True, slots=True)
class VersionComparison:
    common_rows: int
    versions: list[tuple[ModelVersion, Score]]


def _div(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return float(a) / float(b)


def _skill(sae: float | None, sab: float | None, n: int) -> float | None:
    if not n or sae is None or not sab:
        return None
    return 1.0 - float(sae) / float(sab)


def score(key: int | str | None, sums: Mapping[str, Any]) -> Score:
    """A group's metrics from its sums (``ROW_SUMS``)."""
    n = int(sums["n"] or 0)
    mae = _div(sums["sae"], n) if n else None
    mean_abs = _div(sums["sa"], n) if n else None
    rmse = math.sqrt(max(float(sums["se2"] or 0.0), 0.0) / n) if n else None
    nape = int(sums["nape"] or 0)
    return Score(
        key=key, predicted=int(sums["predicted"] or 0), n=n, mae=mae, rmse=rmse,
        bias=_div(sums["se"], n) if n else None,
        nmae=_div(mae, mean_abs), nrmse=_div(rmse, mean_abs),
        mape=100.0 * float(sums["sape"]) / nape if nape else None, mape_n=nape,
        skill_persistence=_skill(sums["saep"], sums["sabp"], int(sums["np"] or 0)),
        skill_seasonal=_skill(sums["saes"], sums["sabs"], int(sums["ns"] or 0)),
    )


def _window(start: datetime | None, end: datetime | None) -> tuple[str, dict[str, Any]]:
    if start is not None and end is not None and end <= start:
        raise InvalidInput("end must be after start")
    where, params = "", {}
    if start is not None:
        where += " AND target >= :start"
        params["start"] = to_us(start)
    if end is not None:
        where += " AND target < :end"
        params["end"] = to_us(end)
    return where, params


class PerformanceService:
    def __init__(self, *, engine: sa.Engine, registry: RegistryService,
                 scores: ScoreStore) -> None:
        self.engine = engine
        self.registry = registry
        self.scores = scores

    def performance(self, model_id: str, *, start: datetime | None = None,
                    end: datetime | None = None, group_by: str = "none") -> Performance:
        if group_by not in GROUP_BY:
            raise InvalidInput(f"group_by must be one of {', '.join(GROUP_BY)}")
        version = self.registry.get(model_id)
        return self.of_version(version, start=start, end=end, group_by=group_by)

    def of_version(self, version: ModelVersion, *, start: datetime | None = None,
                   end: datetime | None = None, group_by: str = "none") -> Performance:
        where, params = _window(start, end)
        params["v"] = version.id
        key = _KEYS[group_by]
        group = "" if group_by == "none" else f" GROUP BY {key}"
        days: Any = sa.bindparam("days", expanding=True)
        totals: dict[Any, dict[str, Any]] = {}

        def add(rows: Sequence[Any]) -> None:
            for r in rows:
                add_sums(totals.setdefault(r.k, empty_sums()), r._mapping)

        with self.engine.connect() as conn:
            if group_by == "asset":  # the sums have no asset: the log itself
                of_version = self.scores.version_in_window if where else "version_id"
                add(conn.execute(sa.text(
                    f"SELECT {key} AS k, {ROW_SUMS} FROM prediction_log "
                    f"WHERE {of_version} = :v{where}{group}"), params).all())
            else:
                dirty = self.scores.dirty_days(conn, version.id)
                stale = f" AND (target / {DAY_US}) NOT IN :days" if dirty else ""
                add(conn.execute(sa.text(
                    f"SELECT {key} AS k, {STORED_SUMS} FROM prediction_scores "
                    f"WHERE version_id = :v{where}{stale}{group}").bindparams(
                        *([days] if dirty else [])), {**params, "days": dirty}).all())
                if dirty:
                    span = {"dlo": dirty[0] * DAY_US, "dhi": (dirty[-1] + 1) * DAY_US}
                    add(conn.execute(sa.text(
                        f"SELECT {key} AS k, {ROW_SUMS} FROM prediction_log "
                        f"WHERE {self.scores.version_in_window} = :v{where} AND target >= :dlo "
                        f"AND target < :dhi AND (target / {DAY_US}) IN :days{group}"
                    ).bindparams(days), {**params, **span, "days": dirty}).all())
        groups = [score(_key(group_by, k), sums) for k, sums in
                  sorted(totals.items(), key=lambda kv: (kv[0] is None, kv[0]))]
        return Performance(
            version=version, start=start, end=end, group_by=group_by,
            predicted=sum(g.predicted for g in groups),
            with_actual=sum(g.n for g in groups),
            groups=[g for g in groups if g.n > 0],
        )

    def compare_model(self, tenant_id: str, model_name: str, *, start: datetime | None = None,
                      end: datetime | None = None) -> VersionComparison:
        """Every version of the model that logged forecasts in the window, scored on the
        rows (asset, origin, target, with an actual) that all of them predicted."""
        versions, _ = self.registry.list(VersionFilter(tenant_id, model_name),
                                         limit=1000, offset=0)
        if not versions:
            raise NotFound(f"model '{tenant_id}:{model_name}' not found")
        return self.compare(versions, start=start, end=end)

    def compare(self, versions: Sequence[ModelVersion], *, start: datetime | None = None,
                end: datetime | None = None) -> VersionComparison:
        where, params = _window(start, end)
        with self.engine.connect() as conn:
            present = {int(r[0]) for r in conn.execute(sa.text(
                "SELECT DISTINCT version_id FROM prediction_log "
                f"WHERE version_id IN :ids{where}").bindparams(
                    sa.bindparam("ids", expanding=True)),
                {"ids": [v.id for v in versions], **params})}
            chosen = [v for v in versions if v.id in present]
            if not chosen:
                return VersionComparison(0, [])
            sql = f"""
            WITH common AS (
                SELECT asset_id, origin, target FROM prediction_log
                WHERE version_id IN :ids AND actual IS NOT NULL{where}
                GROUP BY asset_id, origin, target HAVING count(*) = :nv)
            SELECT p.version_id AS k, {ROW_SUMS}
            FROM prediction_log p JOIN common c
              ON c.asset_id = p.asset_id AND c.origin = p.origin AND c.target = p.target
            WHERE p.version_id IN :ids GROUP BY p.version_id
            """
            rows = conn.execute(sa.text(sql).bindparams(sa.bindparam("ids", expanding=True)),
                                {"ids": [v.id for v in chosen], "nv": len(chosen),
                                 **params}).all()
        by_id = {int(r.k): score(None, dict(r._mapping)) for r in rows}
        common = max((s.n for s in by_id.values()), default=0)
        return VersionComparison(common, [(v, by_id.get(v.id) or score(None, empty_sums()))
                                          for v in chosen])


def _key(group_by: str, raw: Any) -> int | str | None:
    if group_by == "none":
        return None
    if group_by == "horizon":
        return int(raw)
    if group_by == "bucket":
        return str(raw)
    if group_by == "day":
        return datetime.fromtimestamp(int(raw) * 86_400, UTC).strftime("%Y-%m-%d")
    return str(raw)
