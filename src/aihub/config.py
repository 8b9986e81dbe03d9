"""Settings, read once from the environment with the quick-start's variable names.

Unset backends mean the embedded default: SQLite under ``data_dir``, an in-process
cache, and local directories for artifacts and exports.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """All configuration of one aihub process. Build it with ``Settings()`` (env) or by hand."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # Where the embedded default keeps its SQLite file and model artifacts.
    data_dir: Path = Field(default=Path(".aihub"), validation_alias="AIHUB_DATA_DIR")
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    redis_url: str | None = Field(default=None, validation_alias="REDIS_URL")
    # Redis Cluster startup nodes, ``host:port,host:port,...``: selects cluster mode (so
    # does a ``redis+cluster://host:port,...`` REDIS_URL); a plain REDIS_URL set beside it
    # gives the user, password and TLS for every node and is one more startup node.
    redis_cluster_nodes: str | None = Field(default=None,
                                            validation_alias="REDIS_CLUSTER_NODES")
    # Prepended to every Redis key (default none: the quick-start's exact layout); lets
    # several deployments or test runs share one Redis database.
    redis_key_prefix: str = Field(default="", validation_alias="AIHUB_REDIS_PREFIX")

    minio_endpoint_url: str | None = Field(default=None, validation_alias="MINIO_ENDPOINT_URL")
    minio_access_key: str | None = Field(default=None, validation_alias="MINIO_ACCESS_KEY")
    minio_secret_key: str | None = Field(default=None, validation_alias="MINIO_SECRET_KEY")
    minio_region: str = Field(default="us-east-1", validation_alias="MINIO_REGION")
    model_storage_bucket: str = Field(default="ml-models", validation_alias="MODEL_STORAGE_BUCKET")

    feature_cache_ttl: int = Field(default=300, ge=0, validation_alias="FEATURE_CACHE_TTL")
    export_storage_path: str = Field(default="./exports", validation_alias="EXPORT_STORAGE_PATH")

    model_cache_size: int = Field(default=5, ge=0, validation_alias="MODEL_CACHE_SIZE")
    model_cache_ttl: int = Field(default=3600, ge=0, validation_alias="MODEL_CACHE_TTL")
    # Operators who must load pickle/joblib artifacts opt in explicitly; never the default.
    allow_pickle_models: bool = Field(default=False, validation_alias="AIHUB_ALLOW_PICKLE")

    max_ingest_rows: int = Field(default=1_000_000, ge=1, validation_alias="AIHUB_MAX_INGEST_ROWS")
    max_lookback_hours: int = Field(default=8760, ge=1, validation_alias="AIHUB_MAX_LOOKBACK_HOURS")
    # Security and reliability (see README "Security and reliability").
    max_body_bytes: int = Field(default=256 * 1024 * 1024, ge=1024,
                                validation_alias="AIHUB_MAX_BODY_BYTES")
    max_artifact_bytes: int = Field(default=2 * 1024**3, ge=1024,
                                    validation_alias="AIHUB_MAX_ARTIFACT_BYTES")
    # How long a verified (or refused) API key is trusted from memory: revocation and new
    # keys take effect within this many seconds.
    api_key_cache_ttl: float = Field(default=10.0, ge=0, validation_alias="AIHUB_API_KEY_CACHE_TTL")
    # Every API process looks at the database's change feed this often (seconds; 0 turns
    # it off) in a background thread, for writes its online cache never heard of: another
    # process's (a CLI import, another replica) or, with Redis, ones whose invalidation was
    # lost. A write made elsewhere is served stale for at most about this long.
    change_follow_interval: float = Field(default=0.5, ge=0,
                                          validation_alias="AIHUB_CHANGE_FOLLOW_INTERVAL")
    # Seconds between sweeps of orphaned artifact objects (unreferenced by any version and
    # older than an hour) in each API process; 0 turns it off (``aihub models sweep``).
    artifact_sweep_interval: float = Field(default=3600.0, ge=0,
                                           validation_alias="AIHUB_ARTIFACT_SWEEP_INTERVAL")
    # Seconds a request waits for a free database connection before it is a 503.
    db_pool_timeout: float = Field(default=10.0, gt=0, validation_alias="AIHUB_DB_POOL_TIMEOUT")
    # A "running" export older than this is reported failed even if its writer can't be
    # checked (another host).
    export_stale_after_s: int = Field(default=6 * 3600, ge=60,
                                      validation_alias="AIHUB_EXPORT_STALE_AFTER")

    # Streaming ingest from MQTT (README "Streaming ingest (MQTT)"): with a broker URL,
    # ``aihub serve`` runs the stream inside the API process; ``aihub stream mqtt`` alone.
    mqtt_url: str | None = Field(default=None, validation_alias="AIHUB_MQTT_URL")
    mqtt_username: str | None = Field(default=None, validation_alias="AIHUB_MQTT_USERNAME")
    mqtt_password: str | None = Field(default=None, validation_alias="AIHUB_MQTT_PASSWORD")
    mqtt_client_id: str = Field(default="aihub-stream", validation_alias="AIHUB_MQTT_CLIENT_ID")
    mqtt_ca_file: str | None = Field(default=None, validation_alias="AIHUB_MQTT_CA_FILE")
    mqtt_cert_file: str | None = Field(default=None, validation_alias="AIHUB_MQTT_CERT_FILE")
    mqtt_key_file: str | None = Field(default=None, validation_alias="AIHUB_MQTT_KEY_FILE")
    mqtt_tls_insecure: bool = Field(default=False, validation_alias="AIHUB_MQTT_TLS_INSECURE")
    # The API key whose tenants (and write role) the stream may write, once keys exist.
    mqtt_api_key: str | None = Field(default=None, validation_alias="AIHUB_MQTT_API_KEY")
    # A JSON file of topic mappings for other payload layouts (and cumulative registers).
    mqtt_mappings: str | None = Field(default=None, validation_alias="AIHUB_MQTT_MAPPINGS")
    # The first level of the default topics (``aihub/{tenant}/readings/{asset}``).
    mqtt_topic_prefix: str = Field(default="aihub", min_length=1,
                                   validation_alias="AIHUB_MQTT_TOPIC_PREFIX")
    mqtt_batch_ms: int = Field(default=200, ge=1, le=60_000, validation_alias="AIHUB_MQTT_BATCH_MS")
    mqtt_batch_rows: int = Field(default=5_000, ge=1, le=65_535,
                                 validation_alias="AIHUB_MQTT_BATCH_ROWS")
    mqtt_linger_ms: int = Field(default=20, ge=0, le=60_000,
                                validation_alias="AIHUB_MQTT_LINGER_MS")
    # ``aihub stream mqtt``: processes sharing the subscriptions (README "Streaming ingest").
    mqtt_processes: int = Field(default=1, ge=1, le=64, validation_alias="AIHUB_MQTT_PROCESSES")
    # Days a dead letter is kept, and seconds between purges of older ones (0: off); the
    # API and every stream process purge.
    dead_letter_days: int = Field(default=30, ge=1, le=36_500,
                                  validation_alias="AIHUB_DEAD_LETTER_DAYS")
    dead_letter_purge_interval: float = Field(
        default=3600.0, ge=0, validation_alias="AIHUB_DEAD_LETTER_PURGE_INTERVAL")
    # A Dask scheduler (``tcp://host:8786``): exports run there as datasets of parts
    # (``aihub export --dask`` / ``--workers`` choose per command).
    dask_scheduler: str | None = Field(default=None, validation_alias="AIHUB_DASK_SCHEDULER")
    # Forecast monitoring (README "Forecast monitoring"): days a logged prediction is kept
    # (by its target), seconds between writes of the queued log (at most 1), seconds
    # between retention purges and between refreshes of the accuracy gauges (0: off).
    prediction_log_days: int = Field(default=400, ge=1,
                                     validation_alias="AIHUB_PREDICTION_LOG_DAYS")
    prediction_log_interval: float = Field(default=1.0, gt=0, le=1.0,
                                           validation_alias="AIHUB_PREDICTION_LOG_INTERVAL")
    prediction_log_purge_interval: float = Field(
        default=6 * 3600.0, ge=0, validation_alias="AIHUB_PREDICTION_LOG_PURGE_INTERVAL")
    score_compact_interval: float = Field(default=10.0, gt=0,
                                          validation_alias="AIHUB_SCORE_COMPACT_INTERVAL")
    monitoring_gauge_interval: float = Field(default=60.0, ge=0,
                                             validation_alias="AIHUB_MONITORING_GAUGE_INTERVAL")

    @field_validator("redis_cluster_nodes")
    @classmethod
    def _cluster_nodes(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        from aihub.stores.online.redis_clients import parse_nodes

        parse_nodes(value)  # a ValueError names the variable and the bad entry
        return value.strip()

    def sqlalchemy_url(self) -> str:
        """The database URL, or the embedded SQLite file under ``data_dir``."""
        if self.database_url:
            url = self.database_url
            if url.startswith("postgres://"):
                url = "postgresql://" + url[len("postgres://") :]
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url[len("postgresql://") :]
            return url
        return f"sqlite:///{(self.data_dir / 'aihub.db').resolve()}"

    @property
    def artifacts_dir(self) -> Path:
        return self.data_dir / "artifacts"
