"""Schemas of the stream's endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class DeadLetterPublic(BaseModel):
    topic: str
    payload: str = Field(description="the message as received, truncated to 2,048 characters")
    reason: str = Field(description="what was wrong; 'element N' for one reading of a list")
    received_at: datetime


class DeadLetterPage(BaseModel):
    dead_letters: list[DeadLetterPublic]
    total: int
    limit: int
    offset: int


class StreamStatusPublic(BaseModel):
    running: bool = Field(description="false: this process runs no stream")
    broker: str | None = None
    client_id: str | None = None
    connected: bool = False
    subscriptions: list[str] = []
    messages_received: int = 0
    messages_committed: int = 0
    messages_per_second: float = Field(default=0.0, description="committed, over the last 10 s")
    pending: int = Field(default=0, description="received, not yet committed and acknowledged")
    lag_seconds: float = Field(default=0.0, description="age of the oldest pending message")
    last_message_at: str | None = None
    last_commit_at: str | None = None
    batches: int = 0
    reconnects: int = 0
    dropped_qos0: int = Field(default=0, description="QoS 0 messages dropped while the "
                              "stream was full (QoS 1 is never dropped)")
    dead_letters: int = Field(default=0, description="dead-letter records in the database")
    last_error: str | None = None
    processes: int = Field(default=1, description="stream processes whose counts these are "
                           "(AIHUB_MQTT_PROCESSES)")
