"""The demo's training loop, the way a team would run it against aihub:

export features -> train LightGBM -> evaluate on a held-out *later* time range ->
register with rmse/mae/r2/mape -> upload the artifact -> promote to production ->
forecast tomorrow for a few meters with ``predict`` and ``horizons``.

It trains a day-ahead model the way it will be used: forecasts issued every day at 10:00
Berlin time for the 24 hours of the next local day (horizons 14..37), each training row
built from what was known at its origin (``as_known: "origin"``: the weather forecast
then available, the readings that had arrived, the estimates not yet corrected). The
same model trained on ``as_known: "latest"`` (observed weather, corrected history) is
scored next to it, so the demo shows how much that leak flatters a backtest.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from aihub.errors import Conflict
from aihub.features.knowledge import Knowledge, OriginSchedule
from aihub.services.container import Services
from aihub.services.exports import ExportRequest
from aihub.services.registry import RegisterRequest
from aihub.timeutil import floor_hour, utcnow

MODEL_NAME = "demo_forecast"
FEATURE_SET = "day_ahead"
DAY_AHEAD = ("hour_of_day", "day_of_week", "is_weekend", "is_holiday", "hourly_avg",
             "hourly_std", "lag_24h", "lag_168h", "rolling_24h_avg", "temperature",
             "humidity")
HELD_OUT_DAYS = 7
ORIGIN_AT, ORIGIN_TZ = "10:00", "Europe/Berlin"
HORIZONS = tuple(range(14, 38))  # from 10:00 local: the next local day's 24 hours


@dataclass
class DemoRun:
    model_id: str
    metrics: dict[str, float]
    train_rows: int
    test_rows: int
    split_at: datetime
    archived: str | None
    held_out: pd.DataFrame  # asset_id, timestamp, target, prediction
    forecast: pd.DataFrame  # asset_id, timestamp, prediction
    meters: list[str] = field(default_factory=list)
    # The honest comparison: (trained on, scored on) -> metrics on the held-out week.
    comparison: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)
    origin: datetime | None = None


def ensure_feature_set(svc: Services, tenant_id: str) -> None:
    with contextlib.suppress(Conflict):  # defined by an earlier run
        svc.features.create_set(
            tenant_id, name=FEATURE_SET, features=DAY_AHEAD,
            description="Day-ahead load features: calendar, same-hour lags, windows, weather",
            use_cases=("Day-ahead load forecasting",),
        )


def metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    err = p - y
    nonzero = np.abs(y) > 1e-9
    return {
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mae": float(np.mean(np.abs(err))),
        "r2_score": float(1 - np.sum(err**2) / np.sum((y - y.mean()) ** 2)),
        "mape": float(np.mean(np.abs(err[nonzero] / y[nonzero])) * 100),
    }


def export_day_ahead(svc: Services, tenant_id: str, start: datetime, end: datetime,
                     as_known: str) -> tuple[str, pd.DataFrame]:
    """Rows at 10:00 Berlin origins for the next local day, as known per ``as_known``."""
    record = svc.exports.export(ExportRequest(
        tenant_id, FEATURE_SET, start, end,
        knowledge=Knowledge(horizons=HORIZONS, as_known=as_known,
                            origins=OriginSchedule(24, ORIGIN_AT, ORIGIN_TZ)),
    ))
    df = pd.read_parquet(record.storage_path)  # type: ignore[arg-type]
    for col in ("origin", "timestamp"):
        df[col] = pd.to_datetime(df[col], utc=True)
    return record.export_id, df.sort_values(["asset_id", "origin", "timestamp"])


def _fit(train: pd.DataFrame, n_estimators: int) -> Any:
    import lightgbm as lgb

    model = lgb.LGBMRegressor(n_estimators=n_estimators, num_leaves=31, learning_rate=0.05,
                              verbose=-1, random_state=7)
    return model.fit(train[list(DAY_AHEAD)], train["target"])


def last_origin(now: datetime) -> datetime:
    """The latest 10:00 Berlin at or before ``now``."""
    local = now.astimezone(ZoneInfo(ORIGIN_TZ))
    at = local.replace(hour=10, minute=0, second=0, microsecond=0)
    if at > local:
        at -= timedelta(days=1)
    return floor_hour(at)


def run_demo_pipeline(svc: Services, tenant_id: str, *, history_start: datetime,
                      meters: list[str], n_estimators: int = 100) -> DemoRun:
    ensure_feature_set(svc, tenant_id)
    now = floor_hour(utcnow())
    # 1. export twice: each row as known at its origin, and as known now (the leak)
    start = history_start + timedelta(days=7)  # the first week only warms up the lags
    export_id, honest = export_day_ahead(svc, tenant_id, start, now, "origin")
    _, leaky = export_day_ahead(svc, tenant_id, start, now, "latest")
    # 2. split by origin: the last week's forecasts are never seen in training
    split_at = now - timedelta(days=HELD_OUT_DAYS)
    sets = {name: (df[df["timestamp"] < split_at], df[df["origin"] >= split_at])
            for name, df in (("origin", honest), ("latest", leaky))}
    models = {name: _fit(train, n_estimators) for name, (train, _) in sets.items()}
    # 3. evaluate on the later week: as production sees it ("origin" features), and the
    # leaky backtest ("latest" model on "latest" features)
    comparison: dict[tuple[str, str], dict[str, float]] = {}
    for trained, scored in (("origin", "origin"), ("latest", "origin"), ("latest", "latest")):
        test = sets[scored][1]
        comparison[(trained, scored)] = metrics(
            test["target"].to_numpy(), np.asarray(models[trained].predict(test[list(DAY_AHEAD)])))
    train, test = sets["origin"]
    scores = comparison[("origin", "origin")]
    # 4. register, 5. upload, 6. promote the honest model
    features = list(DAY_AHEAD)
    version = utcnow().strftime("v%Y%m%d-%H%M%S")
    meta = {"model_type": "LightGBM", "framework": "lightgbm", "feature_names": features,
            "feature_set": FEATURE_SET, "training_samples": len(train),
            "hyperparameters": {"n_estimators": n_estimators, "num_leaves": 31,
                                "learning_rate": 0.05},
            "origins": {"every_hours": 24, "at": ORIGIN_AT, "timezone": ORIGIN_TZ},
            "horizons": {"min": HORIZONS[0], "max": HORIZONS[-1]}, "as_known": "origin",
            "training_date_range": {"start": train["timestamp"].min().isoformat(),
                                    "end": train["timestamp"].max().isoformat()},
            "evaluation_date_range": {"start": split_at.isoformat(), "end": now.isoformat()},
            "export_id": export_id}
    v = svc.registry.register(RegisterRequest(tenant_id, MODEL_NAME, version, meta, scores))
    svc.model_artifacts.upload(v.model_id, [models["origin"].booster_.model_to_string().encode()])
    promoted = svc.registry.promote(v.model_id, "production",
                                    f"demo run: held-out rmse {scores['rmse']:.3f}")
    # 7. predict: the held-out week through the registry, and tomorrow from today's origin
    alias = f"{tenant_id}:{MODEL_NAME}:production"
    shown = test[test["asset_id"].isin(meters)].copy()
    records = shown[features].astype("float64").to_dict("records")  # NaN = missing value
    shown["prediction"] = svc.predictions.predict_rows(alias, records).predictions
    origin = last_origin(now)
    ahead = svc.predictions.predict_horizons(
        alias, asset_ids=meters, feature_set=FEATURE_SET, lookback_hours=168, as_of=origin,
        horizons=HORIZONS, as_known="origin")
    forecast = pd.DataFrame([{"asset_id": k.asset_id, "timestamp": k.timestamp,
                              "prediction": p} for k, p in zip(ahead.keys, ahead.predictions,
                                                               strict=True)])
    forecast["timestamp"] = pd.to_datetime(forecast["timestamp"], utc=True)
    return DemoRun(
        model_id=v.model_id, metrics=scores, train_rows=len(train), test_rows=len(test),
        split_at=split_at, archived=promoted.archived.model_id if promoted.archived else None,
        held_out=shown[["asset_id", "timestamp", "target", "prediction"]], forecast=forecast,
        meters=meters, comparison=comparison, origin=origin,
    )
