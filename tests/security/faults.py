"""Helpers for the fault tests: child processes on the test's settings, rollup checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import sqlalchemy as sa

from aihub.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def settings_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIHUB_", "MINIO_"))}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    env["AIHUB_DATA_DIR"] = str(settings.data_dir)
    env["EXPORT_STORAGE_PATH"] = settings.export_storage_path
    # This checkout's sources first, whatever copy of aihub the interpreter has installed.
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    for name, value in (("DATABASE_URL", settings.database_url),
                        ("REDIS_URL", settings.redis_url),
                        ("AIHUB_REDIS_PREFIX", settings.redis_key_prefix),
                        ("MINIO_ENDPOINT_URL", settings.minio_endpoint_url),
                        ("MINIO_ACCESS_KEY", settings.minio_access_key),
                        ("MINIO_SECRET_KEY", settings.minio_secret_key),
                        ("MODEL_STORAGE_BUCKET", settings.model_storage_bucket)):
        if value:
            env[name] = value
    return env


def worker(settings: Settings, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tests.security.crash_worker", *args],
                            cwd=ROOT, env=settings_env(settings), stdout=subprocess.PIPE,
                            text=True)


def wait_for(proc: subprocess.Popen[str], prefix: str) -> str:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(prefix):
            return line.strip()
    raise AssertionError(f"worker exited ({proc.wait()}) before printing {prefix!r}")


def rollup_mismatches(engine: sa.Engine) -> int:
    """Rollup rows that differ from a recomputation from the raw readings (0 = exact)."""
    with engine.connect() as conn:
        raw = pl.DataFrame(conn.execute(sa.text(
            "SELECT asset_key, ts, value FROM readings")).all(),
            schema={"asset_key": pl.Int64, "ts": pl.Int64, "value": pl.Float64}, orient="row")
        stored = pl.DataFrame(conn.execute(sa.text(
            "SELECT asset_key, hour, n, mean, min, max FROM hourly_rollups")).all(),
            schema={"asset_key": pl.Int64, "hour": pl.Int64, "n": pl.Int64, "mean": pl.Float64,
                    "min": pl.Float64, "max": pl.Float64}, orient="row")
    expected = raw.group_by("asset_key", (pl.col("ts") // 3_600_000_000 * 3_600_000_000)
                            .alias("hour")).agg(
        pl.len().cast(pl.Int64).alias("n"), pl.col("value").mean().alias("mean"),
        pl.col("value").min().alias("min"), pl.col("value").max().alias("max"))
    joined = expected.join(stored, on=["asset_key", "hour"], how="full", suffix="_s")
    bad = joined.filter(
        pl.col("n").is_null() | pl.col("n_s").is_null() | (pl.col("n") != pl.col("n_s"))
        | ((pl.col("mean") - pl.col("mean_s")).abs() > 1e-9)
        | (pl.col("min") != pl.col("min_s")) | (pl.col("max") != pl.col("max_s")))
    return bad.height
