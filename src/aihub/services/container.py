"""Builds every backend and service for one process from ``Settings``.

The only place that chooses implementations: SQLite or PostgreSQL from ``DATABASE_URL``,
in-process, Redis or Redis Cluster from ``REDIS_URL`` and ``REDIS_CLUSTER_NODES``, local
directory or S3 from ``MINIO_ENDPOINT_URL``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from aihub.auth.cache import KeyCache
from aihub.auth.keys import ApiKeyService
from aihub.config import Settings
from aihub.db import create_db_engine, is_sqlite, upgrade
from aihub.inference.cache import ModelCache
from aihub.services.assets import AssetService
from aihub.services.drift import DriftService
from aihub.services.exports import ExportService
from aihub.services.features import FeatureService
from aihub.services.ingest import IngestService
from aihub.services.model_artifacts import ArtifactService
from aihub.services.monitor import Monitor
from aihub.services.performance import PerformanceService
from aihub.services.prediction_log import PredictionLog, ScoreCompactor
from aihub.services.predictions import PredictionService
from aihub.services.registry import RegistryService
from aihub.services.shadow import ShadowRunner
from aihub.stores.artifacts.base import ArtifactStore
from aihub.stores.metadata.exports import ExportStore
from aihub.stores.metadata.features import FeatureSetStore
from aihub.stores.metadata.models import ModelMetadataStore
from aihub.stores.metadata.prediction_scores import ScoreStore
from aihub.stores.metadata.predictions import PredictionLogStore
from aihub.stores.metadata.served_features import ServedFeatureStore
from aihub.stores.online.base import OnlineStore
from aihub.stores.timeseries.base import TimeSeriesStore


@dataclass
class Services:
    settings: Settings
    engine: sa.Engine
    timeseries: TimeSeriesStore
    online: OnlineStore
    ingest: IngestService
    features: FeatureService
    exports: ExportService
    assets: AssetService
    # Model registry (filled by ``build_registry``).
    artifact_store: ArtifactStore = field(default=None)  # type: ignore[assignment]
    registry: RegistryService = field(default=None)  # type: ignore[assignment]
    model_artifacts: ArtifactService = field(default=None)  # type: ignore[assignment]
    predictions: PredictionService = field(default=None)  # type: ignore[assignment]
    extras: dict[str, Any] = field(default_factory=dict)
    # Forecast monitoring (filled by ``build_monitoring``).
    prediction_log: PredictionLog = field(default=None)  # type: ignore[assignment]
    shadows: ShadowRunner = field(default=None)  # type: ignore[assignment]
    performance: PerformanceService = field(default=None)  # type: ignore[assignment]
    drift: DriftService = field(default=None)  # type: ignore[assignment]
    score_compactor: ScoreCompactor = field(default=None)  # type: ignore[assignment]
    # API keys (filled by ``build_auth``).
    api_keys: ApiKeyService = field(default=None)  # type: ignore[assignment]
    key_cache: KeyCache = field(default=None)  # type: ignore[assignment]

    def close(self) -> None:
        if self.prediction_log is not None:
            self.shadows.close()
            with contextlib.suppress(Exception):  # the database is gone: nothing to save
                self.prediction_log.flush()
        self.exports.close()
        if self.artifact_store is not None:
            self.artifact_store.close()
        self.online.close()
        self.timeseries.close()
        self.engine.dispose()


def build_timeseries(settings: Settings, engine: sa.Engine) -> TimeSeriesStore:
    if is_sqlite(engine):
        from aihub.stores.timeseries.sqlite import SqliteTimeSeriesStore

        return SqliteTimeSeriesStore(engine)
    from aihub.stores.timeseries.postgres import PostgresTimeSeriesStore

    return PostgresTimeSeriesStore(engine)


def build_online(settings: Settings) -> OnlineStore:
    if settings.redis_url or settings.redis_cluster_nodes:
        from aihub.stores.online.redis import RedisOnlineStore

        return RedisOnlineStore(settings.redis_url, cluster_nodes=settings.redis_cluster_nodes,
                                prefix=settings.redis_key_prefix)
    from aihub.stores.online.memory import MemoryOnlineStore

    return MemoryOnlineStore()


def build_exports(
    settings: Settings, engine: sa.Engine, features: FeatureService, records: ExportStore
) -> ExportService:
    """Exports go to the local directory, or with ``EXPORT_STORAGE_PATH=s3://bucket/prefix``
    are staged under the data dir and uploaded to S3 once complete."""
    if settings.export_storage_path.startswith("s3://"):
        from aihub.stores.export_targets import S3ExportTarget

        return ExportService(engine=engine, features=features, records=records,
                             export_dir=settings.data_dir / "exports-staging",
                             publish=S3ExportTarget.from_settings(settings), settings=settings)
    return ExportService(engine=engine, features=features, records=records,
                         export_dir=Path(settings.export_storage_path), settings=settings)


def build_artifact_store(settings: Settings) -> ArtifactStore:
    if settings.minio_endpoint_url:
        from aihub.stores.artifacts.s3 import S3ArtifactStore

        return S3ArtifactStore.from_settings(settings)
    from aihub.stores.artifacts.local import LocalArtifactStore

    return LocalArtifactStore(settings.artifacts_dir)


def build_registry(svc: Services) -> None:
    """Wire the model registry into ``svc``: metadata, artifacts, model cache, predictions."""
    settings = svc.settings
    svc.artifact_store = build_artifact_store(settings)
    svc.registry = RegistryService(engine=svc.engine, store=ModelMetadataStore(svc.engine))
    svc.model_artifacts = ArtifactService(registry=svc.registry, store=svc.artifact_store,
                                          max_bytes=settings.max_artifact_bytes)
    svc.extras.setdefault("ready_checks", []).append(("artifact_store", svc.artifact_store))
    svc.predictions = PredictionService(
        registry=svc.registry,
        artifacts=svc.model_artifacts,
        features=svc.features,
        cache=ModelCache(max_size=settings.model_cache_size, ttl=settings.model_cache_ttl),
        allow_pickle=settings.allow_pickle_models,
    )


def build_services(settings: Settings, *, migrate: bool = True) -> Services:
    engine = create_db_engine(settings)
    if migrate:
        upgrade(engine)
    timeseries = build_timeseries(settings, engine)
    online = build_online(settings)
    records = ExportStore()
    features = FeatureService(
        engine=engine,
        store=timeseries,
        sets=FeatureSetStore(),
        online=online,
        cache_ttl=settings.feature_cache_ttl,
        max_lookback_hours=settings.max_lookback_hours,
    )
    svc = Services(
        settings=settings,
        engine=engine,
        timeseries=timeseries,
        online=online,
        ingest=IngestService(engine=engine, store=timeseries, online=online,
                             max_rows=settings.max_ingest_rows),
        features=features,
        exports=build_exports(settings, engine, features, records),
        assets=AssetService(engine=engine, store=timeseries, online=online, exports=records),
    )
    svc.exports.stale_after_s = settings.export_stale_after_s
    build_registry(svc)
    build_monitoring(svc)
    build_auth(svc)
    return svc


def build_monitoring(svc: Services) -> None:
    """The prediction log (fed by predict, refreshed by ingest) and the shadow runner."""
    store = PredictionLogStore(svc.engine)
    scores = ScoreStore(svc.engine)
    served = ServedFeatureStore(svc.engine)
    svc.prediction_log = PredictionLog(
        engine=svc.engine, store=store, scores=scores, features=served,
        timeseries=svc.timeseries,
        interval=svc.settings.prediction_log_interval,
        retention_days=svc.settings.prediction_log_days)
    svc.shadows = ShadowRunner(engine=svc.engine, store=store, registry=svc.registry,
                               predictions=svc.predictions, prediction_log=svc.prediction_log)
    svc.predictions.monitor = Monitor(registry=svc.registry, prediction_log=svc.prediction_log,
                                      shadows=svc.shadows)
    svc.ingest.on_readings.append(svc.prediction_log.refresh)
    svc.performance = PerformanceService(engine=svc.engine, registry=svc.registry,
                                         scores=scores)
    svc.score_compactor = ScoreCompactor(svc.engine, scores,
                                         svc.settings.score_compact_interval)
    svc.drift = DriftService(engine=svc.engine, registry=svc.registry, exports=ExportStore(),
                             store=served)
    svc.registry.on_delete.append(svc.prediction_log.forget)


def build_auth(svc: Services) -> None:
    svc.api_keys = ApiKeyService(svc.engine)
    svc.key_cache = KeyCache(svc.api_keys, ttl=svc.settings.api_key_cache_ttl)
