"""One error tree for the whole service; each class knows its HTTP status.

    AihubError                      500  (never raised for bad input)
    ├── InvalidInput                422  bad request content; names the field (and row)
    ├── PayloadTooLarge             413  a body or batch beyond a configured limit
    ├── NotFound                    404  unknown tenant, asset, feature set, model, export
    ├── Conflict                    409  duplicate version, disallowed stage transition
    ├── Unauthorized                401  no or unknown API key
    ├── Forbidden                   403  key lacks the role for this operation
    └── BackendUnavailable          503  a database, cache or object store is unreachable

Routes never build error responses themselves: the API maps this tree to JSON in one place
(``aihub.api.errors``); the CLI prints ``message`` and exits non-zero.
"""

from __future__ import annotations

from typing import Any


class AihubError(Exception):
    status_code = 500
    code = "internal_error"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "detail": self.message}
        if self.details is not None:
            body["details"] = self.details
        return body


class InvalidInput(AihubError):
    status_code = 422
    code = "invalid_input"


class PayloadTooLarge(AihubError):
    status_code = 413
    code = "payload_too_large"


class NotFound(AihubError):
    status_code = 404
    code = "not_found"


class Conflict(AihubError):
    status_code = 409
    code = "conflict"


class Unauthorized(AihubError):
    status_code = 401
    code = "unauthorized"


class Forbidden(AihubError):
    status_code = 403
    code = "forbidden"


class BackendUnavailable(AihubError):
    status_code = 503
    code = "backend_unavailable"

    def __init__(self, backend: str, message: str) -> None:
        super().__init__(f"{backend} unavailable: {message}", details={"backend": backend})
        self.backend = backend


class MissingDependency(AihubError):
    """An optional library needed by a configured backend or model format is not installed."""

    status_code = 503
    code = "missing_dependency"


class DigestMismatch(Conflict):
    """Bytes that no longer hash to the sha256 recorded for them (corrupted in storage or
    in transit); they are neither loaded nor kept."""

    code = "digest_mismatch"
