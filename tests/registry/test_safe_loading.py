"""Safe loading: no unpickling by default (proved with a payload that would run a
command), a fixed skops trusted-types list, ONNX and LightGBM text load."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from aihub.config import Settings
from aihub.inference.loaders import ModelLoadRefused, load_model
from aihub.services.container import build_services
from tests.registry.conftest import Register
from tests.registry.models import FEATURES, onnx_bytes, register_body, skops_bytes

ROW = {"hour_of_day": 12, "lag_24h": 40.0, "rolling_24h_avg": 41.0}


class _Exploit:
    """Unpickling this runs a shell command that creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def _upload(client: TestClient, version: str, data: bytes) -> str:
    r = client.post("/ai/models/register", json=register_body(version))
    model_id = r.json()["model_id"]
    assert client.put(f"/ai/models/{model_id}/artifact", content=data).status_code == 200
    return str(model_id)


def test_malicious_pickle_is_refused_and_never_runs(client: TestClient, tmp_path: Path
                                                    ) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Exploit(marker), protocol=4)
    model_id = _upload(client, "v1.0.0", payload)
    assert client.get(f"/ai/models/{model_id}").json()["artifact_format"] == "pickle"
    r = client.post(f"/ai/models/{model_id}/predict", json={"rows": [ROW]})
    assert r.status_code == 409
    body = r.json()
    assert body["error"] == "model_load_refused"
    assert "AIHUB_ALLOW_PICKLE" in body["detail"]
    assert not marker.exists()


def test_payload_is_real(tmp_path: Path) -> None:
    """The control: the same payload does run when unpickled, so the test above means
    something."""
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(_Exploit(marker), protocol=4))
    assert marker.exists()


def test_pickle_loads_only_with_operator_opt_in(tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression

    from tests.registry.models import training_data

    x, y = training_data()
    data = pickle.dumps(LinearRegression().fit(x, y), protocol=4)
    with pytest.raises(ModelLoadRefused):
        load_model(data, allow_pickle=False)
    loaded = load_model(data, allow_pickle=True)
    assert loaded.format == "pickle"
    assert loaded.predict(x[:2]).shape == (2,)


def test_allow_pickle_setting_reaches_the_service(tmp_path: Path) -> None:
    svc = build_services(Settings(AIHUB_DATA_DIR=tmp_path / "d", AIHUB_ALLOW_PICKLE="true"))
    try:
        assert svc.predictions.allow_pickle is True
    finally:
        svc.close()


def test_skops_model_predicts(client: TestClient) -> None:
    model_id = _upload(client, "v1.0.0", skops_bytes())
    r = client.post(f"/ai/models/{model_id}/predict", json={"rows": [ROW, ROW]})
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    assert len(preds) == 2
    assert preds[0] == preds[1]


def test_skops_with_untrusted_type_is_refused(tmp_path: Path) -> None:
    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    data = sio.dumps(FunctionTransformer(func=os.getcwd))
    with pytest.raises(ModelLoadRefused, match="trusted list"):
        load_model(data, allow_pickle=False)


def test_onnx_model_predicts(client: TestClient) -> None:
    model_id = _upload(client, "v1.0.0", onnx_bytes())
    r = client.post(f"/ai/models/{model_id}/predict", json={"rows": [ROW]})
    assert r.status_code == 200, r.text
    assert isinstance(r.json()["predictions"][0], float)


def test_unknown_format_is_refused(client: TestClient) -> None:
    model_id = _upload(client, "v1.0.0", b"just some text")
    r = client.post(f"/ai/models/{model_id}/predict", json={"rows": [ROW]})
    assert r.status_code == 409
    assert "not a loadable format" in r.json()["detail"]


def test_broken_lightgbm_text_is_refused_cleanly(client: TestClient) -> None:
    model_id = _upload(client, "v1.0.0", b"tree\nthis is not a model\n")
    r = client.post(f"/ai/models/{model_id}/predict", json={"rows": [ROW]})
    assert r.status_code == 409
    assert r.json()["error"] == "model_load_refused"


def test_feature_names_come_from_registration(client: TestClient, register: Register
                                              ) -> None:
    model_id = register("v1.0.0")
    shuffled = dict(reversed(list(ROW.items())))
    a = client.post(f"/ai/models/{model_id}/predict", json={"rows": [ROW]}).json()
    b = client.post(f"/ai/models/{model_id}/predict", json={"rows": [shuffled]}).json()
    assert a["predictions"] == b["predictions"]
    assert list(ROW) == FEATURES
