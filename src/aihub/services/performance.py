"""Scores of logged forecasts against their actuals (DESIGN.md "Forecast monitoring").

Every logged row carries its actual ``L(T)`` and baselines (kept current by ingest), so a
score is one aggregate scan of the log in SQL: sums per group, turned into the metrics
here. With ``e = prediction - actual``: mae, rmse, bias, nmae and nrmse (over mean
|actual|), mape over rows with |actual| > 1e-9 (``mape_n`` of them), and skill
``1 - mae / mae_baseline`` against persistence ``L(O-1h)`` and seasonal naive
``L(T-168h)``, each over the rows where that baseline exists.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from aihub.errors import InvalidInput, NotFound
from aihub.services.registry import RegistryService
from aihub.stores.metadata.models import ModelVersion, VersionFilter
from aihub.timeutil import to_us

GROUP_BY = ("none", "horizon", "asset", "day")
_DAY_US = 86_400_000_000
HORIZON_BUCKETS = ("0", "1-6", "7-24", "25-48", "49-168")
_KEYS = {"none": "0", "horizon": "horizon", "asset": "asset_id",
         "day": f"(target / {_DAY_US})",
         # bounded labels for the gauges (``bucket`` is not offered by the API)
         "bucket": "(CASE WHEN horizon = 0 THEN '0' WHEN horizon <= 6 THEN '1-6' "
                   "WHEN horizon <= 24 THEN '7-24' WHEN horizon <= 48 THEN '25-48' "
                   "ELSE '49-168' END)"}

# The sums every score needs, over rows with an actual (``e`` is null otherwise).
_SUMS = """
count(*) AS predicted,
count(actual) AS n,
sum(abs(prediction - actual)) AS sae,
sum((prediction - actual) * (prediction - actual)) AS se2,
sum(prediction - actual) AS se,
sum(abs(actual)) AS sa,
sum(CASE WHEN abs(actual) > 1e-9 THEN abs(prediction - actual) / abs(actual) END) AS sape,
count(CASE WHEN abs(actual) > 1e-9 THEN 1 END) AS nape,
count(CASE WHEN persistence IS NOT NULL THEN actual END) AS np,
sum(CASE WHEN persistence IS NOT NULL THEN abs(prediction - actual) END) AS saep,
sum(abs(persistence - actual)) AS sabp,
count(CASE WHEN seasonal IS NOT NULL THEN actual END) AS ns,
sum(CASE WHEN seasonal IS NOT NULL THEN abs(prediction - actual) END) AS saes,
sum(abs(seasonal - actual)) AS sabs
"""


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


def score(key: int | str | None, row: Any) -> Score:
    """A group's metrics from its sums (a row of ``_SUMS``)."""
    n = int(row.n)
    mae = _div(row.sae, n) if n else None
    mean_abs = _div(row.sa, n) if n else None
    rmse = math.sqrt(float(row.se2) / n) if n else None
    nape = int(row.nape)
    return Score(
        key=key, predicted=int(row.predicted), n=n, mae=mae, rmse=rmse,
        bias=_div(row.se, n) if n else None,
        nmae=_div(mae, mean_abs), nrmse=_div(rmse, mean_abs),
        mape=100.0 * float(row.sape) / nape if nape else None, mape_n=nape,
        skill_persistence=_skill(row.saep, row.sabp, int(row.np)),
        skill_seasonal=_skill(row.saes, row.sabs, int(row.ns)),
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
    def __init__(self, *, engine: sa.Engine, registry: RegistryService) -> None:
        self.engine = engine
        self.registry = registry

    def performance(self, model_id: str, *, start: datetime | None = None,
                    end: datetime | None = None, group_by: str = "none") -> Performance:
        if group_by not in GROUP_BY:
            raise InvalidInput(f"group_by must be one of {', '.join(GROUP_BY)}")
        version = self.registry.get(model_id)
        return self.of_version(version, start=start, end=end, group_by=group_by)

    def of_version(self, version: ModelVersion, *, start: datetime | None = None,
                   end: datetime | None = None, group_by: str = "none") -> Performance:
        where, params = _window(start, end)
        key = _KEYS[group_by]
        group = "" if group_by == "none" else f" GROUP BY {key} ORDER BY {key}"
        sql = (f"SELECT {key} AS k, {_SUMS} FROM prediction_log "
               f"WHERE version_id = :v{where}{group}")
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text(sql), {"v": version.id, **params}).all()
        groups = [score(_key(group_by, r.k), r) for r in rows]
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
        ids: Any = sa.bindparam("ids", expanding=True)
        with self.engine.connect() as conn:
            present = {int(r[0]) for r in conn.execute(sa.text(
                "SELECT DISTINCT version_id FROM prediction_log "
                f"WHERE version_id IN :ids{where}").bindparams(ids),
                {"ids": [v.id for v in versions], **params})}
            chosen = [v for v in versions if v.id in present]
            if not chosen:
                return VersionComparison(0, [])
            sql = f"""
            WITH common AS (
                SELECT asset_id, origin, target FROM prediction_log
                WHERE version_id IN :ids AND actual IS NOT NULL{where}
                GROUP BY asset_id, origin, target HAVING count(*) = :nv)
            SELECT p.version_id AS k, {_SUMS}
            FROM prediction_log p JOIN common c
              ON c.asset_id = p.asset_id AND c.origin = p.origin AND c.target = p.target
            WHERE p.version_id IN :ids GROUP BY p.version_id
            """
            rows = conn.execute(sa.text(sql).bindparams(sa.bindparam("ids", expanding=True)),
                                {"ids": [v.id for v in chosen], "nv": len(chosen),
                                 **params}).all()
        by_id = {int(r.k): score(None, r) for r in rows}
        common = max((s.n for s in by_id.values()), default=0)
        return VersionComparison(common, [(v, by_id[v.id]) for v in chosen if v.id in by_id]
                                 or [(v, score(None, _EMPTY)) for v in chosen])


@dataclass(frozen=True, slots=True)
class _Empty:
    predicted: int = 0
    n: int = 0
    sae: None = None
    se2: float = 0.0
    se: None = None
    sa: None = None
    sape: float = 0.0
    nape: int = 0
    np: int = 0
    saep: None = None
    sabp: None = None
    ns: int = 0
    saes: None = None
    sabs: None = None


_EMPTY = _Empty()


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
