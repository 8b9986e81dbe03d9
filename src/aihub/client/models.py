"""Client methods for the model registry endpoints."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any, BinaryIO
from urllib.parse import quote

from aihub import errors
from aihub.client.base import BaseClient, drop_none, error_from_response, iso
from aihub.client.serialize import serialize_model

Artifact = bytes | str | Path | BinaryIO


def _mid(model_id: str) -> str:
    return quote(model_id, safe=":")


def _file_chunks(path: Path, size: int = 1024 * 1024) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(size):
            yield chunk


def _content(artifact: Artifact) -> bytes | Iterator[bytes] | BinaryIO:
    if isinstance(artifact, str | Path):
        return _file_chunks(Path(artifact))  # streamed, never read whole
    return artifact


class ModelsMixin(BaseClient):
    def register(self, tenant_id: str, model_name: str, version: str, *,
                 metadata: dict[str, Any] | None = None,
                 metrics: dict[str, float] | None = None, stage: str = "staging",
                 artifact: Artifact | None = None, sha256: str | None = None
                 ) -> dict[str, Any]:
        """Register a version; with ``artifact`` (bytes, path or binary file) the bytes go
        in the same request (multipart)."""
        body = {"tenant_id": tenant_id, "model_name": model_name, "version": version,
                "metadata": metadata or {}, "metrics": metrics or {}, "stage": stage}
        if artifact is None:
            return self._json("POST", "/ai/models/register",  # type: ignore[no-any-return]
                              json=body)
        if isinstance(artifact, str | Path):
            with Path(artifact).open("rb") as fh:
                return self._register_multipart(body, fh, sha256)
        return self._register_multipart(body, artifact, sha256)

    def _register_multipart(self, body: dict[str, Any], artifact: bytes | IO[bytes],
                            sha256: str | None) -> dict[str, Any]:
        data = drop_none(request=json.dumps(body), sha256=sha256)
        files = {"artifact": ("model", artifact, "application/octet-stream")}
        return self._json("POST", "/ai/models/register",  # type: ignore[no-any-return]
                          data=data, files=files)

    def register_model(self, model: Any, *, tenant_id: str, model_name: str, version: str,
                       metrics: dict[str, float] | None = None,
                       metadata: dict[str, Any] | None = None,
                       feature_names: Sequence[str] | None = None,
                       stage: str = "staging") -> dict[str, Any]:
        """Serialize ``model`` in a safe format (LightGBM text, skops, ONNX), register it
        and upload it in one request, with its digest checked by the server."""
        s = serialize_model(model)
        meta = {"model_type": s.model_type, "framework": s.framework, **(metadata or {})}
        names = list(feature_names) if feature_names is not None else s.feature_names
        if names is not None:
            meta.setdefault("feature_names", names)
        if hasattr(model, "get_params"):
            meta.setdefault("hyperparameters", _jsonable(model.get_params()))
        return self.register(tenant_id, model_name, version, metadata=meta, metrics=metrics,
                             stage=stage, artifact=s.data,
                             sha256=hashlib.sha256(s.data).hexdigest())

    def get_model(self, model_id: str) -> dict[str, Any]:
        return self._json("GET", f"/ai/models/{_mid(model_id)}")  # type: ignore[no-any-return]

    def list_models(self, *, tenant_id: str | None = None, model_name: str | None = None,
                    stage: str | None = None, limit: int = 100, offset: int = 0
                    ) -> dict[str, Any]:
        params = drop_none(tenant_id=tenant_id, model_name=model_name, stage=stage,
                           limit=limit, offset=offset)
        return self._json("GET", "/ai/models/", params=params)  # type: ignore[no-any-return]

    def promote(self, model_id: str, target_stage: str, *, reason: str | None = None
                ) -> dict[str, Any]:
        return self._json("PUT", f"/ai/models/{_mid(model_id)}/promote",  # type: ignore[no-any-return]
                          json=drop_none(target_stage=target_stage, reason=reason))

    def delete_model(self, model_id: str, *, force: bool = False) -> dict[str, Any]:
        return self._json("DELETE", f"/ai/models/{_mid(model_id)}",  # type: ignore[no-any-return]
                          params={"force": str(force).lower()})

    def history(self, model_id: str) -> dict[str, Any]:
        return self._json("GET", f"/ai/models/{_mid(model_id)}/history")  # type: ignore[no-any-return]

    def upload_artifact(self, model_id: str, artifact: Artifact, *,
                        sha256: str | None = None) -> dict[str, Any]:
        """Stream ``artifact`` (bytes, a path or a binary file) as the version's artifact.
        For paths the sha256 is computed first, so corruption in transit is caught."""
        if sha256 is None and isinstance(artifact, str | Path):
            digest = hashlib.sha256()
            for chunk in _file_chunks(Path(artifact)):
                digest.update(chunk)
            sha256 = digest.hexdigest()
        elif sha256 is None and isinstance(artifact, bytes):
            sha256 = hashlib.sha256(artifact).hexdigest()
        return self._json("PUT", f"/ai/models/{_mid(model_id)}/artifact",  # type: ignore[no-any-return]
                          content=_content(artifact), params=drop_none(sha256=sha256),
                          headers={"Content-Type": "application/octet-stream"})

    def download_artifact(self, model_id: str, dest: str | Path | BinaryIO) -> str:
        """Stream the artifact into ``dest`` (a path or binary file), checking its sha256
        against the server's record; returns the digest. A mismatch raises
        ``DigestMismatch`` and a partially written path is removed."""
        path = Path(dest) if isinstance(dest, str | Path) else None
        with self._http.stream("GET", f"/ai/models/{_mid(model_id)}/artifact") as response:
            if response.status_code >= 400:
                response.read()
                raise error_from_response(response)
            expected = response.headers.get("x-content-sha256", "")
            digest = hashlib.sha256()
            out: Any = path.open("wb") if path is not None else dest
            try:
                for chunk in response.iter_bytes(1024 * 1024):
                    digest.update(chunk)
                    out.write(chunk)
            finally:
                if path is not None:
                    out.close()
        actual = digest.hexdigest()
        if expected and actual != expected:
            if path is not None:
                path.unlink(missing_ok=True)
            raise errors.DigestMismatch(f"downloaded bytes hash to {actual}, not {expected}")
        return actual

    def predict(self, model_id: str, rows: Sequence[dict[str, Any]] | None = None, *,
                asset_ids: Sequence[str] | None = None, feature_set: str | None = None,
                as_of: datetime | str | None = None, lookback_hours: int | None = None
                ) -> dict[str, Any]:
        """Predict on ``rows`` of named features, or on the online features of
        ``asset_ids`` from ``feature_set`` at ``as_of``."""
        body = drop_none(rows=list(rows) if rows is not None else None,
                         asset_ids=list(asset_ids) if asset_ids is not None else None,
                         feature_set=feature_set, as_of=iso(as_of),
                         lookback_hours=lookback_hours)
        return self._json("POST", f"/ai/models/{_mid(model_id)}/predict",  # type: ignore[no-any-return]
                          json=body)


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items()
            if v is None or isinstance(v, str | int | float | bool)}
