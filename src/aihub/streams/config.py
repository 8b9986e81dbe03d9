"""What the stream connects to and which topics it reads: built from ``Settings`` (or the
``aihub stream mqtt`` options), checked once, before anything connects.

A broker is ``mqtt://host:1883`` or ``mqtts://host:8883`` (TLS; ``--ca-file`` for a
private CA, ``--cert-file``/``--key-file`` for a client certificate). A ``Mapping`` says
how one topic layout becomes rows: the default three are DESIGN.md's topics (under
``AIHUB_MQTT_TOPIC_PREFIX``, ``aihub``), more come from a JSON file
(``AIHUB_MQTT_MAPPINGS``, ``--mapping``), e.g.::

    [{"topic": "site/{tenant}/meter/{asset}/power", "time_field": "t",
      "value_field": "p_w", "time_format": "epoch_ms", "scale": 0.001},
     {"topic": "ha/{tenant}/{asset}/energy", "kind": "register", "value_field": "kwh"}]
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from aihub.config import Settings
from aihub.errors import InvalidInput
from aihub.names import is_valid_name

__all__ = ["DEFAULT_MAPPINGS", "MAX_PROCESSES", "Mapping", "StreamConfig", "load_mappings"]

Kind = Literal["readings", "weather", "register"]
TimeFormat = Literal["iso", "epoch_s", "epoch_ms"]
_KINDS = ("readings", "weather", "register")
_TIME_FORMATS = ("iso", "epoch_s", "epoch_ms")
_PLACEHOLDERS = ("{tenant}", "{asset}", "{location}")
MAX_PROCESSES = 64


@dataclass(frozen=True, slots=True)
class Mapping:
    """One topic layout. ``topic`` is a template whose levels are literals or the
    placeholders ``{tenant}`` and ``{asset}`` (``{location}`` for weather); ``tenant``
    fixes the tenant of a template without one. Readings and registers read
    ``time_field`` and ``value_field`` of each JSON object (a custom layout ignores its
    other fields; the default layout, ``strict``, refuses unknown ones) and multiply the
    value by ``scale`` (e.g. 0.001 for W -> kW). A ``register`` reports a cumulative total
    (kWh since installation) that becomes interval consumption per asset; a drop starts a
    new baseline, or, with ``register_max`` (the value where the meter wraps to zero), is
    a rollover whose wrapped difference is stored."""

    topic: str
    kind: Kind = "readings"
    time_field: str = "ts"
    value_field: str = "value"
    time_format: TimeFormat = "iso"
    scale: float = 1.0
    tenant: str | None = None
    register_max: float | None = None
    strict: bool = False
    levels: tuple[str, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "levels", tuple(self.topic.split("/")))

    @property
    def subscription(self) -> str:
        """The MQTT filter: each placeholder becomes ``+``."""
        return "/".join("+" if lv in _PLACEHOLDERS else lv for lv in self.levels)

    @property
    def id_field(self) -> str:
        return "location_id" if self.kind == "weather" else "asset_id"

    def match(self, topic: str) -> tuple[str, str] | None:
        """``(tenant, asset or location)`` named by ``topic``, or None if it is not this
        layout. The names are not checked here (validation names a bad one)."""
        levels = topic.split("/")
        if len(levels) != len(self.levels):
            return None
        tenant, thing = self.tenant, None
        for want, got in zip(self.levels, levels, strict=True):
            if want == "{tenant}":
                tenant = got
            elif want in ("{asset}", "{location}"):
                thing = got
            elif want != got:
                return None
        if tenant is None or thing is None:
            return None
        return tenant, thing


def default_mappings(prefix: str = "aihub") -> tuple[Mapping, ...]:
    """DESIGN.md's topics: readings, weather, and cumulative registers."""
    return (
        Mapping(f"{prefix}/{{tenant}}/readings/{{asset}}", strict=True),
        Mapping(f"{prefix}/{{tenant}}/weather/{{location}}", kind="weather", strict=True),
        Mapping(f"{prefix}/{{tenant}}/registers/{{asset}}", kind="register", strict=True),
    )


DEFAULT_MAPPINGS = default_mappings()


def _mapping(raw: Any, where: str) -> Mapping:
    if type(raw) is not dict:
        raise InvalidInput(f"{where}: must be a JSON object")
    allowed = {"topic", "kind", "time_field", "value_field", "time_format", "scale", "tenant",
               "register_max"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise InvalidInput(f"{where}: unknown key '{unknown[0]}' (allowed: "
                           f"{', '.join(sorted(allowed))})")
    topic = raw.get("topic")
    if not isinstance(topic, str) or not topic or "#" in topic or "+" in topic:
        raise InvalidInput(f"{where}: 'topic' must be a template like "
                           "'site/{tenant}/meter/{asset}' (no MQTT wildcards)")
    kind = raw.get("kind", "readings")
    if kind not in _KINDS:
        raise InvalidInput(f"{where}: 'kind' must be one of {', '.join(_KINDS)}")
    levels = topic.split("/")
    thing = "{location}" if kind == "weather" else "{asset}"
    if levels.count(thing) != 1:
        raise InvalidInput(f"{where}: the topic needs exactly one {thing} level")
    tenant = raw.get("tenant")
    if levels.count("{tenant}") > 1 or ("{tenant}" in levels) == (tenant is not None):
        raise InvalidInput(f"{where}: name the tenant either as a {{tenant}} level or as "
                           "'tenant', exactly once")
    if tenant is not None and not (isinstance(tenant, str) and is_valid_name(tenant)):
        raise InvalidInput(f"{where}: 'tenant' is not a valid name")
    fmt = raw.get("time_format", "iso")
    if fmt not in _TIME_FORMATS:
        raise InvalidInput(f"{where}: 'time_format' must be one of {', '.join(_TIME_FORMATS)}")
    scale = raw.get("scale", 1.0)
    if type(scale) not in (int, float) or not (scale == scale) or scale in (0, float("inf")):
        raise InvalidInput(f"{where}: 'scale' must be a finite non-zero number")
    top = raw.get("register_max")
    if top is not None and (type(top) not in (int, float) or not 0 < top < float("inf")):
        raise InvalidInput(f"{where}: 'register_max' must be a positive number")
    if top is not None and kind != "register":
        raise InvalidInput(f"{where}: 'register_max' applies to kind 'register' only")
    if kind == "weather" and ("time_field" in raw or "value_field" in raw or "scale" in raw):
        raise InvalidInput(f"{where}: weather payloads use DESIGN.md's fields; map only "
                           "the topic")
    time_field, value_field = raw.get("time_field", "ts"), raw.get("value_field", "value")
    for key, value in (("time_field", time_field), ("value_field", value_field)):
        if not isinstance(value, str) or not value:
            raise InvalidInput(f"{where}: '{key}' must be a field name")
    return Mapping(topic, kind=kind, time_field=time_field, value_field=value_field,
                   time_format=fmt, scale=float(scale), tenant=tenant,
                   register_max=None if top is None else float(top))


def load_mappings(source: str) -> tuple[Mapping, ...]:
    """Mappings from a JSON file (a path) or JSON text (starting with ``[``)."""
    if source.lstrip()[:1] in ("[", "{"):
        text = source
    else:
        try:
            text = Path(source).read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"topic mappings: can't read {source[:200]!r} ({exc})") from exc
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"topic mappings: not valid JSON ({exc})") from exc
    if type(raw) is not list or not raw:
        raise InvalidInput("topic mappings: expected a non-empty JSON array of objects")
    return tuple(_mapping(item, f"topic mapping {i}") for i, item in enumerate(raw))


@dataclass(frozen=True, slots=True)
class StreamConfig:
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None
    client_id: str = "aihub-stream"
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    tls_insecure: bool = False
    api_key: str | None = None
    mappings: tuple[Mapping, ...] = DEFAULT_MAPPINGS
    batch_ms: int = 200
    batch_rows: int = 5_000
    # A batch at least this old closes as soon as nothing more is waiting (group commit).
    linger_ms: int = 20
    # Seconds the broker keeps the session (subscriptions, unacknowledged messages) after
    # a disconnect: a restart within it misses nothing.
    session_expiry: int = 7 * 24 * 3600
    keepalive: int = 30
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0
    # Stream processes sharing the subscriptions (``--processes``), and which one this is.
    processes: int = 1
    worker: int = 0

    @property
    def worker_client_id(self) -> str:
        """This worker's session: the client id itself for worker 0 (so a single process
        and the first of several share one session), ``<client id>-<k>`` for worker k."""
        return self.client_id if self.worker == 0 else f"{self.client_id}-{self.worker}"

    def for_worker(self, worker: int) -> StreamConfig:
        return replace(self, worker=worker)

    @property
    def share_group(self) -> str:
        """The shared-subscription group of this stream's workers: its client id, with the
        characters a group name may not hold replaced."""
        return "".join("_" if c in "/+#" else c for c in self.client_id)

    def subscriptions(self) -> tuple[list[str], list[str]]:
        """``(filters to subscribe, filters to unsubscribe)`` for this worker. One process
        subscribes every layout's filter. With several, readings and weather are shared
        (``$share/<group>/<filter>``: the broker hands each message to one worker) and
        cumulative registers go to worker 0 alone, unshared: their conversion needs each
        asset's totals in order. A persistent session keeps the subscriptions of an
        earlier run, so the other form of each filter is unsubscribed."""
        plain = list(dict.fromkeys(m.subscription for m in self.mappings
                                   if m.kind != "register"))
        registers = list(dict.fromkeys(m.subscription for m in self.mappings
                                       if m.kind == "register"))
        shared = [f"$share/{self.share_group}/{f}" for f in plain]
        if self.processes <= 1:
            return plain + registers, shared
        if self.worker == 0:
            return shared + registers, plain
        return shared, plain + registers

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    @property
    def receive_maximum(self) -> int:
        """Unacknowledged messages the broker may send us: a whole micro-batch, plus room
        for the next while one commits (MQTT caps it at 65,535)."""
        return min(65_535, 2 * self.batch_rows)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> StreamConfig:
        """The stream of ``settings`` (``AIHUB_MQTT_*``), with ``overrides`` (CLI options
        that were given) winning; the broker URL as ``url``."""
        url = overrides.pop("url", None) or settings.mqtt_url
        if not url:
            raise InvalidInput("no MQTT broker: pass --broker mqtt://host:1883 or set "
                               "AIHUB_MQTT_URL")
        mappings = overrides.pop("mappings", None) or settings.mqtt_mappings
        prefix = overrides.pop("topic_prefix", None) or settings.mqtt_topic_prefix
        base = parse_broker(url)
        values: dict[str, Any] = {
            "username": settings.mqtt_username or base.username,
            "password": settings.mqtt_password or base.password,
            "client_id": settings.mqtt_client_id,
            "ca_file": settings.mqtt_ca_file,
            "cert_file": settings.mqtt_cert_file,
            "key_file": settings.mqtt_key_file,
            "tls_insecure": settings.mqtt_tls_insecure,
            "api_key": settings.mqtt_api_key,
            "batch_ms": settings.mqtt_batch_ms,
            "batch_rows": settings.mqtt_batch_rows,
            "linger_ms": settings.mqtt_linger_ms,
            "processes": settings.mqtt_processes,
            "mappings": default_mappings(_check_prefix(prefix)),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        if mappings:  # custom layouts beside the default topics
            values["mappings"] += load_mappings(mappings) if isinstance(mappings, str) \
                else tuple(mappings)
        if values.get("ca_file") or values.get("cert_file"):
            values.setdefault("tls", True)
            values["tls"] = True
        if not is_valid_client_id(values["client_id"]):
            raise InvalidInput("MQTT client id: 1..128 characters, no spaces")
        if not 1 <= values["processes"] <= MAX_PROCESSES:
            raise InvalidInput(f"stream processes: 1..{MAX_PROCESSES}")
        if values["processes"] > 1 and len(values["client_id"]) > 120:
            raise InvalidInput("MQTT client id: at most 120 characters with --processes")
        return replace(base, **values)


def _check_prefix(prefix: str) -> str:
    if not prefix or any(c in prefix for c in "+#{}") or prefix.startswith("/") \
            or prefix.endswith("/"):
        raise InvalidInput(f"topic prefix {prefix[:80]!r}: topic levels without wildcards, "
                           "e.g. 'aihub' or 'site-7/aihub'")
    return prefix


def is_valid_client_id(value: str) -> bool:
    return 0 < len(value) <= 128 and value.isprintable() and " " not in value


def parse_broker(url: str) -> StreamConfig:
    """``mqtt://[user:pass@]host[:port]`` (1883) or ``mqtts://...`` (8883, TLS)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not parts.hostname:
        raise InvalidInput(f"broker URL {url[:80]!r}: expected mqtt://host:1883 or "
                           "mqtts://host:8883")
    tls = parts.scheme in ("mqtts", "ssl")
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError as exc:
        raise InvalidInput(f"broker URL {url[:80]!r}: bad port") from exc
    return StreamConfig(
        host=parts.hostname,
        port=port,
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )
