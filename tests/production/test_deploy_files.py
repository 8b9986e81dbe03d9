"""The docker-compose stack and Dockerfile (not runnable here: no Docker engine) stay in
line with the quick-start and with the settings aihub actually reads."""

from __future__ import annotations

from pathlib import Path

import yaml

from aihub.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())  # type: ignore[no-any-return]


def _env(service: dict) -> dict[str, str]:  # type: ignore[type-arg]
    return dict(item.split("=", 1) for item in service.get("environment", []))


def test_services_ports_and_names_follow_the_quick_start() -> None:
    services = _compose()["services"]
    assert set(services) == {"ai-hub", "postgres", "redis", "minio", "dask-scheduler",
                             "dask-worker-1", "dask-worker-2"}
    assert services["ai-hub"]["ports"] == ["8003:8003"]
    assert services["minio"]["ports"] == ["9000:9000", "9001:9001"]
    assert _env(services["minio"]) == {"MINIO_ROOT_USER": "minioadmin",
                                       "MINIO_ROOT_PASSWORD": "minioadmin"}
    assert "timescaledb" in services["postgres"]["image"]
    assert services["minio"]["container_name"] == "omarino-minio"


def test_ai_hub_variables_are_settings_aihub_reads() -> None:
    env = _env(_compose()["services"]["ai-hub"])
    known = {f.validation_alias for f in Settings.model_fields.values()}
    deploy_only = {"AIHUB_WORKERS", "AIHUB_SERVE_ARGS"}  # read by the image's start command
    assert set(env) - deploy_only <= known
    for var in ("DATABASE_URL", "REDIS_URL", "MINIO_ENDPOINT_URL", "MINIO_ACCESS_KEY",
                "MINIO_SECRET_KEY", "MODEL_STORAGE_BUCKET", "FEATURE_CACHE_TTL",
                "EXPORT_STORAGE_PATH", "MODEL_CACHE_SIZE", "MODEL_CACHE_TTL"):
        assert var in env, var
    assert env["MINIO_ENDPOINT_URL"] == "http://minio:9000"
    settings = Settings(**{k: v for k, v in env.items() if k in known})  # type: ignore[arg-type]
    assert settings.sqlalchemy_url().startswith("postgresql+psycopg://omarino:")


def test_dockerfile_migrates_then_serves_on_8003() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "aihub db upgrade && exec aihub serve --host 0.0.0.0 --port 8003" in text
    assert "EXPOSE 8003" in text


def test_readme_documents_the_production_deployment() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Production deployment", 1)[1].split("\n## ", 1)[0]
    for needle in ("DATABASE_URL", "REDIS_URL", "MINIO_ENDPOINT_URL", "EXPORT_STORAGE_PATH",
                   "s3://", "aihub db upgrade", "TimescaleDB", "--workers", "/ready",
                   "/metrics", "docker-compose", "AIHUB_REDIS_PREFIX"):
        assert needle in section, needle


def test_exports_run_on_the_dask_scheduler_and_its_two_workers() -> None:
    services = _compose()["services"]
    hub = services["ai-hub"]
    address = _env(hub)["AIHUB_DASK_SCHEDULER"]
    assert address == "tcp://dask-scheduler:8786"
    scheduler = services["dask-scheduler"]
    assert scheduler["command"][:2] == ["dask", "scheduler"]
    assert "8786" in scheduler["command"]
    exports_dir = _env(hub)["EXPORT_STORAGE_PATH"]
    hub_volume = next(v for v in hub["volumes"] if v.endswith(":" + exports_dir))
    for name in ("dask-worker-1", "dask-worker-2"):
        worker = services[name]
        assert worker["build"] == hub["build"]  # the same image: the same aihub code
        assert worker["command"][:3] == ["dask", "worker", address]
        assert hub_volume in worker["volumes"]  # parts land where the API records them
        assert worker["networks"] == hub["networks"]


def test_readme_documents_the_deployment_at_scale() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## At scale", 1)[1].split("\n## ", 1)[0]
    for needle in ("load balancer", "TimescaleDB", "hypertable", "add_compression_policy",
                   "Redis Cluster", "S3", "Dask", "--dask", "--workers",
                   "AIHUB_DASK_SCHEDULER", "--chunk-rows", "part-00000.parquet"):
        assert needle in section, needle
