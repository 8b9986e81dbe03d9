"""Structural checks run on model bytes before a native library parses them.

LightGBM's C++ parser trusts ``tree_sizes`` and aborts the whole process on a truncated
file; onnxruntime follows external-data paths of an ONNX file to read other files. Both are
refused here, before the library sees the bytes.
"""

from __future__ import annotations

import logging

from aihub.errors import ModelLoadRefused

log = logging.getLogger("aihub.inference")


def check_lightgbm_text(text: str) -> None:
    """The header's ``tree_sizes`` must describe whole ``Tree=i`` blocks that end before
    ``end of trees``; anything else (truncated, spliced, corrupt) is refused."""
    if not text.startswith("tree\n"):
        raise ModelLoadRefused("not a LightGBM text model (no 'tree' header)")
    end = text.find("\nend of trees")
    start = text.find("\nTree=0\n")
    sizes_at = text.find("\ntree_sizes=")
    if end < 0 or start < 0 or sizes_at < 0 or not sizes_at < start < end:
        raise ModelLoadRefused("truncated or corrupt LightGBM text model (missing sections)")
    line = text[sizes_at + 12: text.index("\n", sizes_at + 1)]
    try:
        sizes = [int(s) for s in line.split()]
    except ValueError:
        raise ModelLoadRefused("corrupt LightGBM text model (tree_sizes)") from None
    data = text.encode("utf-8")
    pos = len(text[: start + 1].encode("utf-8"))
    limit = len(text[: end + 1].encode("utf-8"))
    for i, size in enumerate(sizes):
        if size <= 0 or pos + size > limit or not data.startswith(f"Tree={i}\n".encode(), pos):
            raise ModelLoadRefused(f"truncated or corrupt LightGBM text model (tree {i})")
        pos += size


def check_onnx_self_contained(data: bytes) -> None:
    """Refuse ONNX models whose tensors point at external files."""
    try:
        import onnx
    except ImportError:  # pragma: no cover - without onnx, refuse the marker outright
        if b"location" in data and b"external" in data.lower():
            raise ModelLoadRefused("ONNX models with external data are not accepted") from None
        return
    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:  # protobuf's own errors
        log.info("ONNX model refused: %s", exc)
        raise ModelLoadRefused("not a valid ONNX model (it does not parse)") from exc
    tensors = list(model.graph.initializer)
    for node in model.graph.node:
        tensors.extend(a.t for a in node.attribute if a.HasField("t"))
    if any(t.data_location == onnx.TensorProto.EXTERNAL or len(t.external_data) for t in tensors):
        raise ModelLoadRefused("ONNX models with external data references are not accepted "
                               "(the model must be self-contained)")
