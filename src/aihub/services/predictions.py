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
from typing import Any

import numpy as np
import orjson

from aihub.errors import Conflict, DigestMismatch, InvalidInput
from aihub.features.knowledge import AsKnown
from aihub.inference.cache import ModelCache
from aihub.inference.loaders import LoadedModel, load_model
from aihub.services.features import FeatureService, OnlineRequest
from aihub.services.model_artifacts import ArtifactService
from aihub.services.registry import RegistryService
from aihub.stores.metadata.models import ModelVersion
from aihub.timeutil import from_us


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


@dataclass(frozen=True, slots=True)
class HorizonPrediction:
    version: ModelVersion
    origin: datetime
    keys: list[HorizonKey]
    predictions: list[float | None]


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

    def predict_rows(self, model_id: str, rows: Sequence[dict[str, Any]]) -> Prediction:
        version = self.registry.get(model_id)
        model = self.load(version)
        return Prediction(version, _run(model, version, rows))

    def predict_assets(self, model_id: str, *, asset_ids: Sequence[str], feature_set: str,
                       lookback_hours: int, as_of: datetime | None) -> Prediction:
        version = self.registry.get(model_id)
        model = self.load(version)
        req = OnlineRequest(version.tenant_id, feature_set, lookback_hours, as_of)
        hour, responses = self.features.get_online(req, list(asset_ids))
        rows = [orjson.loads(r)["features"] for r in responses]
        return Prediction(version, _run(model, version, rows, asset_ids), list(asset_ids), hour)


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
        for asset in assets:
            for r in by_key.get(asset.key, []):
                keys.append(HorizonKey(asset.asset_id, from_us(r["hour"]), int(r["horizon"])))
                rows.append({f: r[f] for f in fs.features})
        return HorizonFeatures(origin, keys, rows)

    def predict_horizons(self, model_id: str, *, asset_ids: Sequence[str], feature_set: str,
                         lookback_hours: int, as_of: datetime | None,
                         horizons: Sequence[int], as_known: AsKnown) -> HorizonPrediction:
        """A forecast of many assets for many horizons from one origin in one call."""
        version = self.registry.get(model_id)
        model = self.load(version)
        built = self.horizon_features(
            version.tenant_id, asset_ids=asset_ids, feature_set=feature_set,
            lookback_hours=lookback_hours, as_of=as_of, horizons=horizons, as_known=as_known)
        where = [f"asset {k.asset_id} horizon {k.horizon}" for k in built.keys]
        return HorizonPrediction(version, built.origin, built.keys,
                                 _run(model, version, built.rows, where))


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
