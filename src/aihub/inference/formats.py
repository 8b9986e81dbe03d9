"""Recognising an artifact's format from its first bytes (never from what a client says).

    lightgbm  LightGBM text model (``Booster.save_model`` / ``model_to_string``)
    skops     scikit-learn saved with ``skops.io`` (a zip with ``schema.json``)
    onnx      an ONNX ``ModelProto`` (protobuf; field 1 ``ir_version`` comes first)
    pickle    pickle or joblib: code execution on load, refused unless opted in
    unknown   stored and downloadable, but not loadable for predictions
"""

from __future__ import annotations

import zipfile
from io import BytesIO

FORMATS = ("lightgbm", "skops", "onnx", "pickle", "unknown")
SNIFF_BYTES = 64


def sniff_format(head: bytes, whole: bytes | None = None) -> str:
    """The format of an artifact starting with ``head``. With ``whole`` (the full bytes)
    a zip is checked for skops' ``schema.json``."""
    if head.startswith(b"tree\n"):
        return "lightgbm"
    if head.startswith(b"PK\x03\x04"):
        if whole is None:
            return "skops"
        try:
            with zipfile.ZipFile(BytesIO(whole)) as zf:
                return "skops" if "schema.json" in zf.namelist() else "unknown"
        except zipfile.BadZipFile:
            return "unknown"
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return "pickle"  # pickle protocol 2-5 (joblib's uncompressed files too)
    if head[:2] in (b"x\x9c", b"x\x01", b"x\xda") or head.startswith(b"ZF"):
        return "pickle"  # joblib compressed (zlib) pickles
    if head[:1] == b"\x08":
        return "onnx"
    return "unknown"
