"""Shadow versions: staging versions that see every production prediction's inputs.

``PUT /ai/models/{id}/shadow`` marks a staging version. Each prediction through
``{tenant}:{name}:production`` hands its inputs to ``submit``, which only queues them: a
small pool of threads of its own runs every shadow of that name on them and logs the
results under the shadow's version. The answer is already on its way; a shadow that
raises is logged and counted, a slow one only fills the queue, and once ``max_queued``
jobs wait, new ones are dropped (counted) rather than held in memory.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import sqlalchemy as sa

from aihub.db import write_transaction
from aihub.errors import Conflict
from aihub.services.lifecycle import parse_model_id
from aihub.services.prediction_log import Forecasts, PredictionLog
from aihub.services.predictions import PredictionService, _run
from aihub.services.registry import RegistryService
from aihub.stores.metadata.models import ModelVersion
from aihub.stores.metadata.predictions import PredictionLogStore
from aihub.timeutil import utcnow

log = logging.getLogger("aihub.shadow")


class ShadowRunner:
    def __init__(self, *, engine: sa.Engine, store: PredictionLogStore,
                 registry: RegistryService, predictions: PredictionService,
                 prediction_log: PredictionLog, workers: int = 2, max_queued: int = 1000,
                 cache_ttl: float = 2.0) -> None:
        self.engine = engine
        self.store = store
        self.registry = registry
        self.predictions = predictions
        self.prediction_log = prediction_log
        self.max_queued = max_queued
        self.cache_ttl = cache_ttl
        self.failed = 0
        self.dropped = 0
        self.ran = 0
        self._queued = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._cache: dict[tuple[str, str], tuple[float, list[ModelVersion]]] = {}
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="aihub-shadow")

    # -- marking --------------------------------------------------------------------------
    def set_shadow(self, model_id: str, enabled: bool) -> ModelVersion:
        """Mark (or unmark) a version as a shadow; only staging versions may be one."""
        ref = parse_model_id(model_id)
        with write_transaction(self.engine) as conn:
            version = self.registry._resolve(conn, ref, for_update=True)
            if enabled and version.stage != "staging":
                raise Conflict(f"{version.model_id} is in {version.stage}; only staging "
                               "versions can shadow production")
            self.store.set_shadow(conn, version.id, enabled, utcnow())
        with self._lock:
            self._cache.clear()
        return version

    def is_shadow(self, version: ModelVersion) -> bool:
        with self.engine.connect() as conn:
            return version.stage == "staging" and self.store.is_shadow(conn, version.id)

    def shadows_of(self, tenant_id: str, model_name: str) -> list[ModelVersion]:
        """The model's shadow versions (cached for ``cache_ttl`` seconds)."""
        key = (tenant_id, model_name)
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < self.cache_ttl:
            return hit[1]
        with self.engine.connect() as conn:
            names = self.store.shadow_versions(conn, tenant_id, model_name)
            found = (self.registry.store.get(conn, tenant_id, model_name, n) for n in names)
            versions = [v for v in found if v is not None]
        with self._lock:
            self._cache[key] = (time.monotonic(), versions)
        return versions

    # -- running --------------------------------------------------------------------------
    def submit(self, production: ModelVersion, inputs: Sequence[dict[str, Any]],
               keys: Forecasts, features: Sequence[str]) -> bool:
        """Queue a run of the shadows on ``inputs`` (rows aligned with ``keys``, whose
        predictions are production's). Never blocks; False if the queue is full and the
        job dropped."""
        with self._lock:
            if self._queued >= self.max_queued:
                self.dropped += 1
                return False
            self._queued += 1
        try:
            self._pool.submit(self._run, production, list(inputs), keys, list(features))
        except RuntimeError:  # shut down
            self._done()
            return False
        return True

    def _run(self, production: ModelVersion, inputs: list[dict[str, Any]],
             keys: Forecasts, features: list[str]) -> None:
        try:
            for version in self.shadows_of(production.tenant_id, production.model_name):
                try:
                    model = self.predictions.load(version)
                    out = _run(model, version, inputs)
                    rows = replace(keys, predictions=out)
                    self.prediction_log.log(version, rows, source="shadow", features=features)
                    self.ran += 1
                except Exception as exc:  # a shadow's failure stays its own
                    self.failed += 1
                    log.warning("shadow %s failed: %s", version.model_id, exc)
        except Exception as exc:
            self.failed += 1
            log.warning("shadows of %s not run: %s", production.model_id, exc)
        finally:
            self._done()

    def _done(self) -> None:
        with self._lock:
            self._queued -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no job is queued or running (tests, shutdown); False on timeout."""
        with self._lock:
            return self._idle.wait_for(lambda: self._queued == 0, timeout=timeout)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

