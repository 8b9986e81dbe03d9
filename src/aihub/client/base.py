"""Transport and error mapping shared by the client's endpoint groups."""

from __future__ import annotations

import os
from typing import Any

import httpx

from aihub import errors

_BY_STATUS: dict[int, type[errors.AihubError]] = {
    401: errors.Unauthorized,
    403: errors.Forbidden,
    404: errors.NotFound,
    409: errors.Conflict,
    413: errors.PayloadTooLarge,
    422: errors.InvalidInput,
}


def error_from_response(response: httpx.Response) -> errors.AihubError:
    """The service's error type for a non-2xx response, with its message and details."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    detail = body.get("detail")
    message = detail if isinstance(detail, str) else f"HTTP {response.status_code}"
    status = response.status_code
    if status == 503:
        backend = (body.get("details") or {}).get("backend", "service") \
            if isinstance(body.get("details"), dict) else "service"
        exc: errors.AihubError = errors.BackendUnavailable(backend, message)
        exc.message = message
        return exc
    cls = _BY_STATUS.get(status, errors.AihubError)
    exc = cls(message, details=body.get("details"))
    exc.code = body.get("error", exc.code)
    return exc


class BaseClient:
    def __init__(self, base_url: str = "http://localhost:8003", *, timeout: float = 60.0,
                 headers: dict[str, str] | None = None,
                 transport: httpx.BaseTransport | None = None,
                 api_key: str | None = None) -> None:
        """``api_key`` (default: the ``AIHUB_API_KEY`` environment variable) is sent as
        ``Authorization: Bearer <key>``."""
        headers = dict(headers or {})
        api_key = api_key or os.environ.get("AIHUB_API_KEY") or None
        if api_key:
            headers.setdefault("Authorization", f"Bearer {api_key}")
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout,
                                  headers=headers, transport=transport)

    def __enter__(self) -> BaseClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise errors.BackendUnavailable("aihub server", str(exc) or type(exc).__name__) \
                from exc
        if response.status_code >= 400:
            raise error_from_response(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._request(method, path, **kwargs).json()


def drop_none(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def iso(value: Any) -> Any:
    """datetimes as ISO 8601 (naive ones are left for the server to refuse)."""
    return value.isoformat() if hasattr(value, "isoformat") else value
