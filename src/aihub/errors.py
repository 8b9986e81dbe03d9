"""One error tree for the whole service; each class knows its HTTP status.

    AihubError                      500  (never raised for bad input)
    ├── InvalidInput                422  bad request content; names the field (and row)
    ├── PayloadTooLarge             413  a body or batch beyond a configured limit
    ├── NotFound                    404  unknown tenant, asset, feature set, model, export
    ├── Conflict                    409  duplicate version, disallowed stage transition
    │   ├── DigestMismatch          409  bytes that no longer hash to their recorded sha256
    │   └── ModelLoadRefused        409  an artifact that policy or its content won't load
    ├── Unauthorized                401  no or unknown API key
    ├── Forbidden                   403  key lacks the role for this operation
    ├── BackendUnavailable          503  a database, cache or object store is unreachable
    └── MissingDependency           503  an optional library a backend or format needs

Routes never build error responses themselves: the API maps this tree to JSON in one place
(``aihub.api.errors``), sending ``public_message`` (for a 5xx, the backend's own error text
goes to the server log, never to the client); the CLI prints ``message`` and exits non-zero.
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

    @property
    def public_message(self) -> str:
        """What a client is told (``message`` unless it may carry a backend's error text)."""
        return self.message

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "detail": self.public_message}
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


class DigestMismatch(Conflict):
    """Bytes that no longer hash to the sha256 recorded for them (corrupted in storage or
    in transit); they are neither loaded nor kept."""

    code = "digest_mismatch"


class ModelLoadRefused(Conflict):
    """The artifact exists but policy or its content forbids loading it."""

    code = "model_load_refused"


class Unauthorized(AihubError):
    status_code = 401
    code = "unauthorized"


class Forbidden(AihubError):
    status_code = 403
    code = "forbidden"


class BackendUnavailable(AihubError):
    """``backend`` (``postgresql``, ``sqlite``, ``redis``, ``s3``, ...) can't be reached or
    failed. ``reason`` (often the driver's own error text) is logged, not sent to clients."""

    status_code = 503
    code = "backend_unavailable"

    def __init__(self, backend: str, reason: str) -> None:
        super().__init__(f"{backend} unavailable: {reason}", details={"backend": backend})
        self.backend = backend
        self.reason = reason

    @property
    def public_message(self) -> str:
        return f"{self.backend} unavailable; try again later"


class MissingDependency(AihubError):
    """An optional library needed by a configured backend or model format is not installed."""

    status_code = 503
    code = "missing_dependency"
