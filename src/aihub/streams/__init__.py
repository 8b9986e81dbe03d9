"""Streaming ingest from MQTT.

``config`` (broker, credentials, topic layouts), ``payloads`` (messages into rows for
the shared validation), ``registers`` (cumulative totals into intervals), ``writer`` (a
micro-batch in one transaction), ``subscriber`` (paho-mqtt, acknowledgements after the
commit), ``dead_letters`` and ``status`` (what the API shows), ``runner`` (wiring).
"""
