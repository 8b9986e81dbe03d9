"""Builds the stream of one process from its services and config: the key it writes
with, the writer and the subscriber. Used by ``aihub stream mqtt`` and by ``aihub serve``
(``AIHUB_MQTT_URL``) alike."""

from __future__ import annotations

from aihub.auth.scope import Principal
from aihub.errors import Forbidden, InvalidInput, Unauthorized
from aihub.services.container import Services
from aihub.streams.config import StreamConfig
from aihub.streams.dead_letters import DeadLetterService
from aihub.streams.subscriber import MqttStream
from aihub.streams.writer import StreamWriter

__all__ = ["build_stream", "stream_principal"]


def stream_principal(svc: Services, api_key: str | None) -> Principal | None:
    """Whom the stream writes as. Without API keys configured it writes every tenant (like
    the open API); once keys exist it needs one (``--api-key``/``AIHUB_MQTT_API_KEY``) with
    the write role, and writes only that key's tenants."""
    if api_key is None:
        if svc.api_keys.any():
            raise Unauthorized("API keys are configured: the stream needs one to write with "
                               "(--api-key or AIHUB_MQTT_API_KEY; role write)")
        return None
    principal = svc.key_cache.verify(api_key)
    if principal is None:
        raise Unauthorized("the stream's API key is unknown or revoked")
    if not principal.may("write"):
        raise Forbidden(f"the stream's API key has role '{principal.role}'; it needs 'write'")
    return principal


def build_stream(svc: Services, config: StreamConfig) -> MqttStream:
    if not config.mappings:
        raise InvalidInput("no topics to subscribe to")
    writer = StreamWriter(ingest=svc.ingest, mappings=config.mappings,
                          principal=stream_principal(svc, config.api_key))
    before = DeadLetterService(svc.engine).count()
    return MqttStream(config, writer, dead_letters_before=before)
