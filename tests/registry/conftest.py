"""Registry fixtures: a registered LightGBM version with its artifact, over the in-process
client (``client``) or the Python client against a real server (``hub``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from aihub.client import Client
from tests.conftest import LiveServer
from tests.registry.models import lightgbm_text, register_body

MODEL = "tenant-123:forecast_lgb"

Register = Callable[..., str]


@pytest.fixture
def register(client: TestClient) -> Register:
    """Register ``version`` (optionally with the LightGBM artifact); returns its model_id."""

    def _register(version: str = "v1.0.0", *, artifact: bool = True, **kw: str) -> str:
        r = client.post("/ai/models/register", json=register_body(version, **kw))
        assert r.status_code == 201, r.text
        model_id = r.json()["model_id"]
        if artifact:
            up = client.put(f"/ai/models/{model_id}/artifact", content=lightgbm_text())
            assert up.status_code == 200, up.text
        return str(model_id)

    return _register


@pytest.fixture
def hub(live_server: LiveServer) -> Iterator[Client]:
    with Client(live_server.url) as c:
        yield c
