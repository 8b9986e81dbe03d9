"""Broker URLs, topic layouts and the CLI's command line, checked before anything
connects."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from aihub.config import Settings
from aihub.errors import InvalidInput
from aihub.streams.config import StreamConfig, load_mappings, parse_broker

AIHUB = str(Path(sys.executable).parent / "aihub")


def test_broker_urls() -> None:
    plain = parse_broker("mqtt://broker.example:1884")
    assert (plain.host, plain.port, plain.tls) == ("broker.example", 1884, False)
    tls = parse_broker("mqtts://u%40x:p%3Aw@broker")
    assert (tls.port, tls.tls, tls.username, tls.password) == (8883, True, "u@x", "p:w")
    assert parse_broker("mqtt://h").port == 1883
    for bad in ("http://h:1883", "mqtt://", "h:1883", "mqtt://h:99999"):
        with pytest.raises(InvalidInput):
            parse_broker(bad)


def test_settings_and_overrides(tmp_path: Path) -> None:
    settings = Settings(AIHUB_DATA_DIR=tmp_path, AIHUB_MQTT_URL="mqtt://u:p@b:1883",
                        AIHUB_MQTT_BATCH_MS=50, AIHUB_MQTT_TOPIC_PREFIX="site-7/aihub")
    config = StreamConfig.from_settings(settings)
    assert (config.host, config.username, config.password, config.batch_ms) == (
        "b", "u", "p", 50)
    assert [m.subscription for m in config.mappings] == [
        "site-7/aihub/+/readings/+", "site-7/aihub/+/weather/+", "site-7/aihub/+/registers/+"]
    assert config.receive_maximum == 10_000  # two batches of the default 5,000
    config = StreamConfig.from_settings(settings, url="mqtt://other", batch_ms=None,
                                        ca_file="ca.pem", client_id="me")
    assert (config.host, config.batch_ms, config.tls, config.client_id) == (
        "other", 50, True, "me")
    with pytest.raises(InvalidInput, match="no MQTT broker"):
        StreamConfig.from_settings(Settings(AIHUB_DATA_DIR=tmp_path))
    with pytest.raises(InvalidInput, match="topic prefix"):
        StreamConfig.from_settings(settings, topic_prefix="a/+/b")


def test_mappings_are_checked_and_match_their_topics() -> None:
    (m,) = load_mappings('[{"topic": "site/{tenant}/meter/{asset}/p", "scale": 0.001, '
                         '"time_format": "epoch_ms", "value_field": "w"}]')
    assert m.subscription == "site/+/meter/+/p"
    assert m.match("site/t1/meter/m7/p") == ("t1", "m7")
    assert m.match("site/t1/meter/m7/q") is None and m.match("site/t1/meter/p") is None
    (fixed,) = load_mappings('[{"topic": "ha/{asset}", "tenant": "t9", "kind": "register"}]')
    assert fixed.match("ha/m1") == ("t9", "m1")
    bad = [
        '{"topic": "x/{asset}"}',
        '[{"topic": "x/{tenant}"}]',
        '[{"topic": "x/{tenant}/{asset}", "tenant": "t"}]',
        '[{"topic": "x/+/{tenant}/{asset}"}]',
        '[{"topic": "x/{tenant}/{asset}", "kind": "gas"}]',
        '[{"topic": "x/{tenant}/{asset}", "scale": 0}]',
        '[{"topic": "x/{tenant}/{asset}", "scale": true}]',
        '[{"topic": "x/{tenant}/{asset}", "register_max": 10}]',
        '[{"topic": "x/{tenant}/{location}", "kind": "weather", "scale": 2}]',
        '[{"topic": "x/{tenant}/{asset}", "units": "W"}]',
        '[{"topic": "x/{tenant}/{asset}", "time_format": "rfc"}]',
        '[]',
    ]
    for text in bad:
        with pytest.raises(InvalidInput):
            load_mappings(text)


def test_cli_help_and_a_missing_broker() -> None:
    shown = subprocess.run([AIHUB, "stream", "mqtt", "--help"], capture_output=True,
                           text=True, timeout=60, env={**os.environ, "COLUMNS": "200"})
    assert shown.returncode == 0
    for option in ("--broker", "--username", "--password", "--ca-file", "--cert-file",
                   "--insecure", "--api-key", "--mapping", "--batch-ms", "--client-id"):
        assert option in shown.stdout
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIHUB_MQTT")}
    missing = subprocess.run([AIHUB, "stream", "mqtt"], capture_output=True, text=True,
                             timeout=60, env=env)
    assert missing.returncode == 2
    assert "no MQTT broker" in missing.stderr


def test_serve_refuses_a_bad_stream_config_before_serving(tmp_path: Path) -> None:
    env = {**os.environ, "AIHUB_DATA_DIR": str(tmp_path), "AIHUB_MQTT_URL": "http://x"}
    bad = subprocess.run([AIHUB, "serve", "--port", "1"], capture_output=True, text=True,
                         timeout=60, env=env)
    assert bad.returncode == 2 and "expected mqtt://host:1883" in bad.stderr
    env["AIHUB_MQTT_URL"] = "mqtt://127.0.0.1:1883"
    two = subprocess.run([AIHUB, "serve", "--port", "1", "--workers", "2"],
                         capture_output=True, text=True, timeout=60, env=env)
    assert two.returncode == 2 and "--workers 1" in two.stderr
