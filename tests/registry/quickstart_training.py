# ruff: noqa
# The quick-start's "Integration with Training Pipeline" script, verbatim except for
# scikit-learn API drift: `root_mean_squared_error` replaces `squared=False`.
# tests/registry/test_quickstart_http.py runs it against a live server.
import lightgbm as lgb
import requests
import joblib
from datetime import datetime

# 1. Export training data
export_response = requests.post(
    "http://localhost:8003/ai/features/export",
    json={
        "tenant_id": "tenant-123",
        "feature_set": "forecast_advanced",
        "start_time": "2024-01-01T00:00:00Z",
        "end_time": "2024-11-30T23:59:59Z"
    }
)
export_data = export_response.json()
parquet_path = export_data["storage_path"]

# 2. Load features
import pandas as pd
df = pd.read_parquet(parquet_path)

# 3. Train model
X = df[["hour_of_day", "temperature", "lag_24h", "rolling_24h_avg"]]
y = df["target"]

model = lgb.LGBMRegressor(num_leaves=31, learning_rate=0.05)
model.fit(X, y)

# 4. Evaluate
from sklearn.metrics import root_mean_squared_error, mean_absolute_error, r2_score
y_pred = model.predict(X)
rmse = root_mean_squared_error(y, y_pred)
mae = mean_absolute_error(y, y_pred)
r2 = r2_score(y, y_pred)

# 5. Register model
version = datetime.now().strftime("v%Y%m%d-%H%M%S")

register_response = requests.post(
    "http://localhost:8003/ai/models/register",
    json={
        "tenant_id": "tenant-123",
        "model_name": "forecast_lgb",
        "version": version,
        "metadata": {
            "model_type": "LightGBM",
            "framework": "lightgbm",
            "hyperparameters": model.get_params(),
            "feature_names": X.columns.tolist(),
            "training_samples": len(X),
            "training_date_range": {
                "start": "2024-01-01",
                "end": "2024-11-30"
            }
        },
        "metrics": {
            "rmse": float(rmse),
            "mae": float(mae),
            "r2_score": float(r2)
        },
        "stage": "staging"
    }
)

print(f"Model registered: {register_response.json()['model_id']}")

# 6. Upload model artifact to MinIO
# (In production, this would be automated by the training pipeline)
