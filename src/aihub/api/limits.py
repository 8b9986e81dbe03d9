"""Request body size limits, enforced before a route reads a byte.

Artifact uploads (``PUT /ai/models/{id}/artifact`` and multipart registration) may be up
to ``AIHUB_MAX_ARTIFACT_BYTES``; every other body up to ``AIHUB_MAX_BODY_BYTES``. A
declared ``Content-Length`` over the limit is refused at once (413); a chunked JSON body is
read up to the limit (413 beyond) and replayed; a chunked artifact streams on to the
artifact service, which stops at its own limit (413, nothing kept).
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aihub.api.errors import error_response
from aihub.errors import PayloadTooLarge

_ARTIFACT_PATHS = re.compile(r"^/ai/models/([^/]+/artifact|register)/?$")


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings = scope["app"].state.services.settings
        artifact = _ARTIFACT_PATHS.match(scope["path"]) is not None
        limit = settings.max_artifact_bytes if artifact else settings.max_body_bytes
        declared = _content_length(scope["headers"])
        if declared is not None:
            if declared > limit:
                await error_response(_too_large(limit, artifact))(scope, receive, send)
                return
            await self.app(scope, receive, send)  # the server never delivers more
            return
        if artifact:  # streamed on; the artifact service counts and stops at the limit
            await self.app(scope, receive, send)
            return
        # A chunked JSON body: read it (the route would anyway) up to the limit, then replay.
        chunks: list[bytes] = []
        received = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            received += len(message.get("body", b""))
            if received > limit:
                await error_response(_too_large(limit, artifact))(scope, receive, send)
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _too_large(limit: int, artifact: bool) -> PayloadTooLarge:
    what = "an artifact" if artifact else "a request body"
    env = "AIHUB_MAX_ARTIFACT_BYTES" if artifact else "AIHUB_MAX_BODY_BYTES"
    return PayloadTooLarge(f"{what} may be at most {limit} bytes ({env})",
                           details={"limit_bytes": limit})


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
