"""The demo's training loop, the way a team would run it against aihub:

export features -> train LightGBM -> evaluate on a held-out *later* time range ->
register with rmse/mae/r2/mape -> upload the artifact -> promote to production ->
predict the next 24 hours for a few meters from the online features.

It trains on a "day-ahead" feature set: only features known 24 hours before H (calendar,
same-hour-of-previous-days lags, the weather forecast), so every one of the next 24 hours
can be predicted from online features without feeding predictions back in.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from aihub.errors import Conflict
from aihub.services.container import Services
from aihub.services.exports import ExportRequest
from aihub.services.registry import RegisterRequest
from aihub.timeutil import floor_hour, utcnow

MODEL_NAME = "demo_forecast"
FEATURE_SET = "day_ahead"
DAY_AHEAD = ("hour_of_day", "day_of_week", "is_weekend", "is_holiday", "hourly_avg",
             "hourly_std", "lag_24h", "lag_168h", "temperature", "humidity")
HELD_OUT_DAYS = 7


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


def ensure_feature_set(svc: Services, tenant_id: str) -> None:
    with contextlib.suppress(Conflict):  # defined by an earlier run
        svc.features.create_set(
            tenant_id, name=FEATURE_SET, features=DAY_AHEAD,
            description="Features known a day ahead: calendar, same-hour lags, weather forecast",
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


def run_demo_pipeline(svc: Services, tenant_id: str, *, history_start: datetime,
                      meters: list[str], n_estimators: int = 100) -> DemoRun:
    import lightgbm as lgb

    ensure_feature_set(svc, tenant_id)
    now = floor_hour(utcnow())
    # 1. export (the first week only warms up the lags)
    record = svc.exports.export(ExportRequest(tenant_id, FEATURE_SET,
                                              history_start + timedelta(days=7), now))
    df = pd.read_parquet(record.storage_path)  # type: ignore[arg-type]
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True)
    # 2. split by time: the last week is never seen in training
    split_at = now - timedelta(days=HELD_OUT_DAYS)
    train, test = df[df["timestamp"] < split_at], df[df["timestamp"] >= split_at]
    features = list(DAY_AHEAD)
    model = lgb.LGBMRegressor(n_estimators=n_estimators, num_leaves=31, learning_rate=0.05,
                              verbose=-1, random_state=7)
    model.fit(train[features], train["target"])
    # 3. evaluate on the later range
    scores = metrics(test["target"].to_numpy(), np.asarray(model.predict(test[features])))
    # 4. register, 5. upload, 6. promote
    version = utcnow().strftime("v%Y%m%d-%H%M%S")
    meta = {"model_type": "LightGBM", "framework": "lightgbm", "feature_names": features,
            "feature_set": FEATURE_SET, "training_samples": len(train),
            "hyperparameters": {"n_estimators": n_estimators, "num_leaves": 31,
                                "learning_rate": 0.05},
            "training_date_range": {"start": train["timestamp"].min().isoformat(),
                                    "end": train["timestamp"].max().isoformat()},
            "evaluation_date_range": {"start": split_at.isoformat(), "end": now.isoformat()},
            "export_id": record.export_id}
    v = svc.registry.register(RegisterRequest(tenant_id, MODEL_NAME, version, meta, scores))
    svc.model_artifacts.upload(v.model_id, [model.booster_.model_to_string().encode()])
    promoted = svc.registry.promote(v.model_id, "production",
                                    f"demo run: held-out rmse {scores['rmse']:.3f}")
    # 7. predict: the held-out week through the registry, and the next 24 hours
    alias = f"{tenant_id}:{MODEL_NAME}:production"
    shown = test[test["asset_id"].isin(meters)].copy()
    records = shown[features].astype("float64").to_dict("records")  # NaN = missing value
    shown["prediction"] = svc.predictions.predict_rows(alias, records).predictions
    rows = []
    for h in range(24):
        hour = now + timedelta(hours=h)
        p = svc.predictions.predict_assets(alias, asset_ids=meters, feature_set=FEATURE_SET,
                                           lookback_hours=168, as_of=hour)
        rows += [{"asset_id": a, "timestamp": hour, "prediction": y}
                 for a, y in zip(meters, p.predictions, strict=True)]
    forecast = pd.DataFrame(rows)
    forecast["timestamp"] = pd.to_datetime(forecast["timestamp"], utc=True)
    return DemoRun(
        model_id=v.model_id, metrics=scores, train_rows=len(train), test_rows=len(test),
        split_at=split_at, archived=promoted.archived.model_id if promoted.archived else None,
        held_out=shown[["asset_id", "timestamp", "target", "prediction"]], forecast=forecast,
        meters=meters,
    )
