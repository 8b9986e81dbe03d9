"""Turning an in-memory model into a safe artifact the server can load without pickle.

LightGBM (``Booster`` or the scikit-learn wrappers) becomes its text model format;
scikit-learn estimators become skops files; ONNX ``ModelProto`` objects their protobuf
bytes. Anything else is refused here rather than pickled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Serialized:
    data: bytes
    framework: str
    model_type: str
    feature_names: list[str] | None


def serialize_model(model: Any) -> Serialized:
    module = type(model).__module__
    if module.startswith("lightgbm"):
        booster = getattr(model, "booster_", model)
        if not hasattr(booster, "model_to_string"):
            raise TypeError("LightGBM model is not fitted")
        names = list(booster.feature_name())
        return Serialized(booster.model_to_string().encode("utf-8"), "lightgbm", "LightGBM",
                          names)
    if module.startswith("onnx") and hasattr(model, "SerializeToString"):
        return Serialized(model.SerializeToString(), "onnx", "ONNX", None)
    if module.startswith("sklearn") or hasattr(model, "get_params"):
        import skops.io as sio

        fitted = getattr(model, "feature_names_in_", None)
        return Serialized(sio.dumps(model), "sklearn", type(model).__name__,
                          [str(n) for n in fitted] if fitted is not None else None)
    raise TypeError(
        f"cannot serialize {type(model).__name__} safely; pass a LightGBM model, a "
        "scikit-learn estimator or an ONNX ModelProto (or upload bytes with upload_artifact)"
    )
