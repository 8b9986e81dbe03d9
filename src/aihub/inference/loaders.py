"""Turning verified artifact bytes into a predictor, without executing untrusted code.

Policy (DESIGN.md "Model registry"):
- LightGBM: the text model format, parsed by ``Booster(model_str=...)``.
- scikit-learn: skops, loaded only if every type it would construct is either trusted by
  skops itself (plain sklearn/numpy/scipy types) or listed in ``TRUSTED_SKOPS_TYPES``.
  The list is fixed in code: widening it is a code review, not a request parameter.
- ONNX: ``onnxruntime`` on the CPU provider.
- pickle/joblib: refused, unless the operator set ``AIHUB_ALLOW_PICKLE=true``. Unpickling
  runs arbitrary code from the file, so the refusal happens before a byte is unpickled.

The caller checks the sha256 against the registry row before calling ``load_model``.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from aihub.errors import MissingDependency, ModelLoadRefused
from aihub.inference.formats import sniff_format
from aihub.inference.guards import check_lightgbm_text, check_onnx_self_contained

__all__ = ["TRUSTED_SKOPS_TYPES", "LoadedModel", "ModelLoadRefused", "load_model"]

log = logging.getLogger("aihub.inference")

TRUSTED_SKOPS_TYPES: tuple[str, ...] = (
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn._loss.loss.HalfSquaredError",
    "sklearn._loss.link.IdentityLink",
    "sklearn._loss.link.Interval",
    "numpy.dtype",
    "numpy.ndarray",
)


@dataclass(frozen=True, slots=True)
class LoadedModel:
    format: str
    predict: Callable[[np.ndarray], np.ndarray]  # float64 matrix (rows x features) -> 1-d
    feature_names: list[str] | None  # the names the artifact itself carries, if any


def load_model(data: bytes, *, allow_pickle: bool) -> LoadedModel:
    fmt = sniff_format(data[:64], data)
    loader = _LOADERS.get(fmt)
    if fmt == "pickle" and not allow_pickle:
        raise ModelLoadRefused(
            "refusing to load a pickle/joblib artifact: unpickling runs code from the file. "
            "Re-save the model as a LightGBM text model, with skops, or as ONNX; an operator "
            "who trusts every uploader can set AIHUB_ALLOW_PICKLE=true"
        )
    if loader is None:
        raise ModelLoadRefused(
            "the artifact is not a loadable format (LightGBM text model, skops, ONNX)"
        )
    try:
        return loader(data)
    except ModelLoadRefused:
        raise
    except (ValueError, TypeError, RuntimeError, OSError, KeyError) as exc:
        # The library's own words go to the log, not to the client.
        log.info("%s artifact refused: %s: %s", fmt, type(exc).__name__, exc)
        raise ModelLoadRefused(f"the {fmt} artifact could not be loaded (corrupt, or "
                               "saved by an incompatible version)") from exc


def _lightgbm(data: bytes) -> LoadedModel:
    import lightgbm as lgb

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelLoadRefused("not a valid LightGBM text model (not UTF-8 text)") from exc
    check_lightgbm_text(text)  # the C++ parser aborts the process on truncated files
    try:
        booster = lgb.Booster(model_str=text)
    except lgb.basic.LightGBMError as exc:
        log.info("LightGBM model refused: %s", exc)
        raise ModelLoadRefused("not a valid LightGBM text model (LightGBM can't parse "
                               "it)") from exc

    def predict(x: np.ndarray) -> np.ndarray:
        out = booster.predict(x, num_threads=1)
        return np.asarray(out, dtype=np.float64).reshape(len(x), -1)[:, 0]

    return LoadedModel("lightgbm", predict, list(booster.feature_name()))


def _skops(data: bytes) -> LoadedModel:
    try:
        import skops.io as sio
    except ImportError as exc:  # pragma: no cover - skops is a dependency
        raise MissingDependency("loading scikit-learn models needs the 'skops' package") from exc
    untrusted = [t for t in sio.get_untrusted_types(data=data) if t not in TRUSTED_SKOPS_TYPES]
    if untrusted:
        raise ModelLoadRefused(
            f"the skops artifact needs types outside the trusted list: {untrusted[:10]}",
            details={"untrusted_types": untrusted},
        )
    model = sio.loads(data, trusted=list(TRUSTED_SKOPS_TYPES))
    names = getattr(model, "feature_names_in_", None)

    def predict(x: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict(x), dtype=np.float64).reshape(len(x), -1)[:, 0]

    return LoadedModel("skops", predict, [str(n) for n in names] if names is not None else None)


def _onnx(data: bytes) -> LoadedModel:
    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - onnxruntime is a dependency
        raise MissingDependency("loading ONNX models needs the 'onnxruntime' package") from exc
    check_onnx_self_contained(data)  # never let a model make us read other files
    try:
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        log.info("ONNX model refused: %s", exc)
        raise ModelLoadRefused("not a valid ONNX model (onnxruntime can't load it)") from exc
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ModelLoadRefused("ONNX models must take one input tensor (rows x features)")
    name = inputs[0].name
    dtype = np.float64 if "double" in inputs[0].type else np.float32

    def predict(x: np.ndarray) -> np.ndarray:
        out = session.run(None, {name: x.astype(dtype, copy=False)})[0]
        return np.asarray(out, dtype=np.float64).reshape(len(x), -1)[:, 0]

    return LoadedModel("onnx", predict, None)


def _pickle(data: bytes) -> LoadedModel:
    # Only reached with AIHUB_ALLOW_PICKLE=true: the operator accepted the risk.
    import joblib

    model: Any = joblib.load(io.BytesIO(data))
    names = getattr(model, "feature_names_in_", None)

    def predict(x: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict(x), dtype=np.float64).reshape(len(x), -1)[:, 0]

    return LoadedModel("pickle", predict, [str(n) for n in names] if names is not None else None)


_LOADERS: dict[str, Callable[[bytes], LoadedModel]] = {
    "lightgbm": _lightgbm,
    "skops": _skops,
    "onnx": _onnx,
    "pickle": _pickle,
}
