"""Real, small models for registry tests (trained in milliseconds, deterministic)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

FEATURES = ["hour_of_day", "lag_24h", "rolling_24h_avg"]


def training_data(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.integers(0, 24, n), rng.normal(40, 5, n), rng.normal(40, 3, n)])
    y = 10 * np.sin(x[:, 0] / 24 * 2 * np.pi) + 0.5 * x[:, 1] + 0.5 * x[:, 2]
    return x.astype(float), y


@lru_cache
def lightgbm_text(n_estimators: int = 20, seed: int = 0) -> bytes:
    """A LightGBM model in its text format, trained with named features."""
    import lightgbm as lgb

    x, y = training_data(seed=seed)
    booster = lgb.train(
        {"objective": "regression", "num_leaves": 15, "verbose": -1, "seed": seed,
         "deterministic": True, "num_threads": 1},
        lgb.Dataset(x, y, feature_name=FEATURES),
        num_boost_round=n_estimators,
    )
    return booster.model_to_string().encode()


def skops_bytes() -> bytes:
    import skops.io as sio
    from sklearn.ensemble import RandomForestRegressor

    x, y = training_data()
    model = RandomForestRegressor(n_estimators=5, random_state=0).fit(x, y)
    return sio.dumps(model)


def onnx_bytes() -> bytes:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LinearRegression

    x, y = training_data()
    model = LinearRegression().fit(x, y)
    return to_onnx(model, x[:1].astype(np.float32)).SerializeToString()


def register_body(version: str = "v1.0.0", *, tenant: str = "tenant-123",
                  name: str = "forecast_lgb", stage: str = "staging") -> dict[str, object]:
    return {
        "tenant_id": tenant,
        "model_name": name,
        "version": version,
        "metadata": {"model_type": "LightGBM", "framework": "lightgbm",
                     "feature_names": FEATURES},
        "metrics": {"rmse": 2.5, "mae": 1.8, "r2_score": 0.92, "mape": 4.2},
        "stage": stage,
    }
