"""Predictions from registered models, on given rows or on the feature store's online
features (the very responses ``/ai/features/get-batch`` would return).

Every load verifies the artifact's sha256 against the registry row before the bytes reach
a loader; loaded models are cached by that digest.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from aihub.errors import Conflict, DigestMismatch, InvalidInput
from aihub.features.knowledge import AsKnown
from aihub.inference.cache import ModelCache
from aihub.inference.loaders import LoadedModel, load_model
from aihub.services.features import FeatureService, OnlineRequest
from aihub.services.model_artifacts import ArtifactService
from aihub.services.monitor import LogKey
from aihub.services.prediction_log import Forecasts
from aihub.services.registry import RegistryService
from aihub.stores.metadata.models import ModelVersion
from aihub.timeutil import from_us, to_us


@dataclass(frozen=True, slots=True)
class HorizonKey:
    """Which forecast a row of a horizon prediction is: the asset, target T and h."""

    asset_id: str
    timestamp: datetime
    horizon: int


@dataclass(frozen=True, slots=True)
class HorizonFeatures:
    """The feature matrix for (assets, origin, horizons): one row per key, in order."""

    origin: datetime
    keys: list[HorizonKey]
    rows: list[dict[str, Any]]
    targets_us: list[int]  # each key's timestamp in epoch microseconds


@dataclass(frozen=True, slots=True)
class HorizonPrediction:
    version: ModelVersion
    origin: datetime
    keys: list[HorizonKey]
    predictions: list[float | None]

if TYPE_CHECKING:
    from aihub.services.monitor import Monitor


@dataclass(frozen=True, slots=True)
class Prediction:
    version: ModelVersion
    predictions: list[float | None]
    asset_ids: list[str] | None = None
    timestamp: datetime | None = None


class PredictionService:
    def __init__(self, *, registry: RegistryService, artifacts: ArtifactService,
                 features: FeatureService, cache: ModelCache[LoadedModel],
                 allow_pickle: bool) -> None:
        self.registry = registry
        self.artifacts = artifacts
        self.features = features
        self.cache = cache
        self.allow_pickle = allow_pickle
        self.monitor: Monitor | None = None  # forecast monitoring (``services/monitor.py``)
        registry.on_delete.append(self._forget)

    def _forget(self, version: ModelVersion) -> None:
        if version.artifact_sha256:
            self.cache.invalidate(version.artifact_sha256)

    def load(self, version: ModelVersion) -> LoadedModel:
        if version.artifact_sha256 is None:
            raise Conflict(f"{version.model_id} has no artifact to predict with")
        digest = version.artifact_sha256

        def _load() -> LoadedModel:
            data = self.artifacts.read(version)
            actual = hashlib.sha256(data).hexdigest()
            if actual != digest:
                raise DigestMismatch(
                    f"the artifact of {version.model_id} hashes to {actual}, not the recorded "
                    f"{digest}; it was changed or corrupted in storage and will not be loaded"
                )
            return load_model(data, allow_pickle=self.allow_pickle)

        return self.cache.get(digest, _load)

    def predict_rows(self, model_id: str, rows: Sequence[dict[str, Any]], *,
                     keys: Sequence[LogKey] | None = None) -> Prediction:
        version = self.registry.get(model_id)
        model = self.load(version)
        p = Prediction(version, _run(model, version, rows))
        if self.monitor is not None:
            self.monitor.predicted(model_id, p, rows, keys=keys)
        return p

    def predict_assets(self, model_id: str, *, asset_ids: Sequence[str], feature_set: str,
                       lookback_hours: int, as_of: datetime | None,
                       log: bool = True) -> Prediction:
        version = self.registry.get(model_id)
        model = self.load(version)
        req = OnlineRequest(version.tenant_id, feature_set, lookback_hours, as_of)
        hour, responses = self.features.get_online(req, list(asset_ids))
        rows = [orjson.loads(r)["features"] for r in responses]
        p = Prediction(version, _run(model, version, rows, asset_ids), list(asset_ids), hour)
        if self.monitor is not None:
            self.monitor.predicted(model_id, p, rows, log=log)
        return p

    def horizon_features(self, tenant_id: str, *, asset_ids: Sequence[str], feature_set: str,
                         lookback_hours: int, as_of: datetime | None,
                         horizons: Sequence[int], as_known: AsKnown) -> HorizonFeatures:
        """The features of every asset at origin ``as_of`` (default: the current hour) for
        each target ``as_of + h``, as the feature store computes them online (one store
        read for all horizons), ordered by asset (as asked) then horizon."""
        req = OnlineRequest(tenant_id, feature_set, lookback_hours, as_of)
        origin, assets, frame = self.features.known_rows(
            req, list(asset_ids), horizons=horizons, as_known=as_known)
        fs = self.features.feature_set(tenant_id, feature_set)
        by_key: dict[int, list[dict[str, Any]]] = {}
        for r in frame.iter_rows(named=True):
            by_key.setdefault(r["asset_key"], []).append(r)
        keys: list[HorizonKey] = []
        rows: list[dict[str, Any]] = []
        targets: list[int] = []
        for asset in assets:
            for r in by_key.get(asset.key, []):
                keys.append(HorizonKey(asset.asset_id, from_us(r["hour"]), int(r["horizon"])))
                rows.append({f: r[f] for f in fs.features})
                targets.append(r["hour"])
        return HorizonFeatures(origin, keys, rows, targets)

    def predict_horizons(self, model_id: str, *, asset_ids: Sequence[str], feature_set: str,
                         lookback_hours: int, as_of: datetime | None,
                         horizons: Sequence[int], as_known: AsKnown,
                         log: bool = True) -> HorizonPrediction:
        """A forecast of many assets for many horizons from one origin in one call, logged
        (unless ``log`` is false) by asset, origin and target for monitoring."""
        version = self.registry.get(model_id)
        model = self.load(version)
        built = self.horizon_features(
            version.tenant_id, asset_ids=asset_ids, feature_set=feature_set,
            lookback_hours=lookback_hours, as_of=as_of, horizons=horizons, as_known=as_known)
        where = [f"asset {k.asset_id} horizon {k.horizon}" for k in built.keys]
        hp = HorizonPrediction(version, built.origin, built.keys,
                               _run(model, version, built.rows, where))
        if self.monitor is not None and log:
            origin = to_us(built.origin)
            logged = Forecasts([k.asset_id for k in built.keys], [origin] * len(built.keys),
                               built.targets_us, hp.predictions)
            self.monitor.predicted(model_id, Prediction(version, hp.predictions), built.rows,
                                   forecasts=logged)
        return hp


def feature_order(model: LoadedModel, version: ModelVersion) -> list[str]:
    """Registered ``feature_names`` first (the contract the trainer stated), else the
    names carried by the artifact itself."""
    names = version.feature_names or model.feature_names
    if not names:
        raise Conflict(f"{version.model_id} has no feature_names in its metadata or artifact; "
                       "register it with metadata.feature_names")
    return names


def _run(model: LoadedModel, version: ModelVersion, rows: Sequence[dict[str, Any]],
         asset_ids: Sequence[str] | None = None) -> list[float | None]:
    names = feature_order(model, version)
    matrix = np.empty((len(rows), len(names)), dtype=np.float64)
    for i, row in enumerate(rows):
        where = f"asset {asset_ids[i]}" if asset_ids else f"rows[{i}]"
        for j, name in enumerate(names):
            if name not in row:
                raise InvalidInput(
                    f"{where}: missing feature '{name}' (the model needs {names})",
                    details={"row": i, "missing": [n for n in names if n not in row]},
                )
            value = row[name]
            if value is None:
                matrix[i, j] = math.nan  # missing value: tree models route it, as in training
            elif isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidInput(f"{where}: feature '{name}' must be a number or null")
            else:
                matrix[i, j] = float(value)
    if not rows:
        return []
    out = model.predict(matrix)
    return [None if not math.isfinite(v) else float(v) for v in out]
