"""Drift of served features against the training export's reference bins: a synthetic
shift (PSI above 0.2) and no shift (PSI below 0.1)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from aihub.services import drift
from aihub.services.container import Services
from aihub.services.drift import bins_of, psi
from tests.factories import at, ingest, iso, readings
from tests.monitoring.conftest import TENANT, logged
from tests.registry.models import FEATURES, lightgbm_text

pytestmark = pytest.mark.backends

ASSETS = [f"m{i}" for i in range(10)]


def weekly(asset: int, level: float) -> Callable[[float], float]:
    """A weekly cycle (shifted per asset) plus noise: a full week of it has the same
    distribution of lags and rolling means as any other full week."""
    rng = np.random.default_rng(asset)

    def value(h: float) -> float:
        return float(level + 10 * np.sin(2 * np.pi * (h + 7 * asset) / 168) + rng.normal(0, 2))

    return value


@pytest.fixture
def trained(client: TestClient) -> str:
    """Ten meters over 16 days, an export of one week (days 1-7) and a version trained on
    it."""
    for i, asset in enumerate(ASSETS):
        ingest(client, TENANT, readings(asset, range(24 * 16), weekly(i, 40.0)))
    r = client.post("/ai/features/export", json={
        "tenant_id": TENANT, "feature_set": "forecast_basic",
        "start_time": iso(at(24)), "end_time": iso(at(24 * 8))})  # one full week
    assert r.status_code == 200, r.text
    export_id = r.json()["export_id"]
    body = {"tenant_id": TENANT, "model_name": "load", "version": "v1.0.0",
            "metadata": {"feature_names": FEATURES, "export_id": export_id}}
    model_id = client.post("/ai/models/register", json=body).json()["model_id"]
    client.put(f"/ai/models/{model_id}/artifact", content=lightgbm_text())
    return str(model_id)


def serve(client: TestClient, services: Services, model_id: str, hours: range) -> None:
    for h in hours:
        r = client.post(f"/ai/models/{model_id}/predict", json={
            "asset_ids": ASSETS, "feature_set": "forecast_basic", "as_of": iso(at(h))})
        assert r.status_code == 200, r.text
    services.prediction_log.flush()


def test_reference_bins_describe_the_exported_rows(client: TestClient, services: Services,
                                                   trained: str) -> None:
    export_id = services.registry.get(trained).metadata["export_id"]
    with services.engine.connect() as conn:
        record = services.exports.records.get(conn, export_id)
        reference = services.exports.records.reference(conn, export_id)
    assert record is not None and reference is not None
    table = pq.read_table(record.storage_path) if record.storage_path and \
        not record.storage_path.startswith("s3://") else None
    assert set(reference["features"]) >= set(FEATURES)
    lag = reference["features"]["lag_24h"]
    assert len(lag["edges"]) == 9 and sum(lag["shares"]) == pytest.approx(1.0)
    if table is not None:
        column = table.column("lag_24h")
        values = column.drop_null().to_numpy()
        assert lag["edges"] == pytest.approx(list(np.quantile(values, np.arange(1, 10) / 10)))
        assert lag["null_rate"] == pytest.approx(column.null_count / len(column))
        # Built from the tables as written, they are exactly what reading the file gives.
        assert reference == json.loads(json.dumps(drift.reference_bins(
            record.storage_path, list(reference["features"]))))


def test_no_shift_is_below_0_1_and_a_shift_above_0_2(client: TestClient, services: Services,
                                                     trained: str) -> None:
    serve(client, services, trained, range(24 * 8, 24 * 15))  # the next full week
    r = client.get(f"/ai/models/{trained}/drift",
                   params={"start": iso(at(24 * 8)), "end": iso(at(24 * 15))})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["served_rows"] == 10 * 168 and body["export_id"]
    assert set(body["features"]) == set(FEATURES)
    for name, f in body["features"].items():
        assert f["psi"] < 0.1, (name, f)
        assert not f["drifted"]
        assert f["null_rate_served"] == 0.0
    # The load jumps by half: lags and windows drift, the hour of day does not.
    for i, asset in enumerate(ASSETS):
        ingest(client, TENANT, readings(asset, range(24 * 16, 24 * 19), weekly(i, 60.0)))
    serve(client, services, trained, range(24 * 17 + 1, 24 * 19))
    shifted = client.get(f"/ai/models/{trained}/drift",
                         params={"start": iso(at(24 * 17))}).json()["features"]
    assert shifted["lag_24h"]["psi"] > 0.2 and shifted["lag_24h"]["drifted"]
    assert shifted["rolling_24h_avg"]["psi"] > 0.2 and shifted["rolling_24h_avg"]["drifted"]
    assert shifted["hour_of_day"]["psi"] < 0.1 and not shifted["hour_of_day"]["drifted"]
    assert logged(services, trained).height == 10 * 168 + 10 * 47


def test_psi_counts_empty_bins_as_1e_4() -> None:
    ref = bins_of(np.arange(100, dtype=float), 100)
    served = np.full(50, 1000.0)  # everything in the last bin
    shares = np.maximum(np.array(ref["shares"]), 1e-4)
    got = np.maximum(np.array([0.0] * 9 + [1.0]), 1e-4)
    assert psi(ref, served) == pytest.approx(float(np.sum((got - shares) * np.log(got / shares))))
    assert psi(ref, np.array([])) is None


def test_drift_needs_an_export(client: TestClient, services: Services) -> None:
    body = {"tenant_id": TENANT, "model_name": "load", "version": "v3.0.0", "metadata": {}}
    plain = client.post("/ai/models/register", json=body).json()["model_id"]
    assert client.get(f"/ai/models/{plain}/drift").status_code == 409
    body = {**body, "version": "v3.0.1", "metadata": {"export_id": "nope"}}
    missing = client.post("/ai/models/register", json=body).json()["model_id"]
    assert client.get(f"/ai/models/{missing}/drift").status_code == 404


def test_reference_bins_of_a_large_file_sample_row_groups_and_count_every_null(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 40 row groups of 1,000 rows; a sample of ~10,000 rows reads every 4th group: the edges
    # come from those, the null rate from every row.
    from aihub.services import drift

    monkeypatch.setattr(drift, "SAMPLE_ROWS", 10_000)
    rng = np.random.default_rng(3)
    values = rng.normal(50, 10, 40_000)
    nulls = np.zeros(40_000, dtype=bool)
    nulls[::7] = True
    nulls[35_000:] = True  # the last groups (never sampled in full) hold many nulls
    path = tmp_path / "big.parquet"
    pq.write_table(pa.table({"x": pa.array(values, mask=nulls)}), path, row_group_size=1_000)
    ref = drift.reference_bins(path, ["x"])["features"]["x"]
    assert ref["null_rate"] == pytest.approx(nulls.mean())
    assert ref["n"] == int((~nulls).sum())
    sampled = np.concatenate([values[g * 1000:(g + 1) * 1000][~nulls[g * 1000:(g + 1) * 1000]]
                              for g in range(0, 40, 4)])
    assert ref["edges"] == pytest.approx(list(np.quantile(sampled, np.arange(1, 10) / 10)))
    # a dataset directory of parts reads as one
    parts = tmp_path / "dataset"
    parts.mkdir()
    for k in range(2):
        pq.write_table(pa.table({"x": pa.array(values[k * 20_000:(k + 1) * 20_000],
                                                mask=nulls[k * 20_000:(k + 1) * 20_000])}),
                       parts / f"part-{k:05d}.parquet", row_group_size=1_000)
    assert drift.reference_bins(parts, ["x"])["features"]["x"] == ref


def test_reference_bins_of_a_dataset_hold_one_part_at_a_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A dataset export has a part per ~30 assets. Reading its parts for the reference bins
    # must not keep any bytes of a part once the next one is read: Arrow's allocations
    # stay flat across the parts instead of growing by a part each (memory that grew with
    # the asset count in the process that ran a 10,000-asset dataset export).
    from aihub.services import drift

    rng = np.random.default_rng(5)
    columns = [f"f{j}" for j in range(8)]
    parts = tmp_path / "dataset"
    parts.mkdir()
    for k in range(30):  # random floats: each part's ~320 KB barely compress
        pq.write_table(pa.table({c: rng.normal(size=5_000) for c in columns}),
                       parts / f"part-{k:05d}.parquet", compression="zstd")
    largest = max(f.stat().st_size for f in parts.iterdir())
    held: list[int] = []
    read_row_group = pq.ParquetFile.read_row_group

    def spy(self: pq.ParquetFile, *args: object, **kwargs: object) -> pa.Table:
        held.append(pa.total_allocated_bytes())
        return read_row_group(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", spy)
    ref = drift.reference_bins(parts, columns)
    assert len(held) == 30
    # The total is the whole process's: another thread's passing allocation can lift a
    # sample or two, so compare the later parts' median with the first parts' least.
    # Holding every part grows it by ~25 parts here; one part at a time, by none.
    later = sorted(held[20:])[5]
    assert later - min(held[:3]) < 3 * largest, (held[:3], held[20:], largest)
    assert ref["features"]["f0"]["n"] == 30 * 5_000


def test_bins_of_many_values_come_from_a_sample_within_0_01_of_the_exact_ones() -> None:
    # Above QUANTILE_SAMPLE values the edges and shares come from a uniform sample: each
    # edge within 0.01 in rank of the exact quantile, each share within 0.01 of the share
    # of all values in its bin (the bound the drift module states), and always the same.
    rng = np.random.default_rng(11)
    values = np.concatenate([
        rng.lognormal(3, 1, 600_000),  # skewed
        rng.integers(0, 24, 300_000).astype(float),  # ties, as in the calendar features
    ])
    rng.shuffle(values)
    assert len(values) > drift.QUANTILE_SAMPLE
    ref = bins_of(values, len(values) + 1_000)
    assert ref["n"] == len(values)
    assert ref["null_rate"] == pytest.approx(1_000 / (len(values) + 1_000))
    ordered = np.sort(values)
    for q, edge in zip(np.arange(1, 10) / 10, ref["edges"], strict=True):
        below = np.searchsorted(ordered, edge, side="left") / len(values)
        at_or_below = np.searchsorted(ordered, edge, side="right") / len(values)
        assert below - 0.01 <= q <= at_or_below + 0.01, (q, edge, below, at_or_below)
    exact_counts = np.bincount(np.searchsorted(ref["edges"], values, side="right"),
                               minlength=drift.BINS)
    assert ref["shares"] == pytest.approx(list(exact_counts / len(values)), abs=0.01)
    assert sum(ref["shares"]) == pytest.approx(1.0)
    assert bins_of(values, len(values) + 1_000) == ref  # a fixed seed: the same bins
    # Not a subset of the exact ones: the edges do differ from exact quantiles a little.
    exact = np.quantile(values, np.arange(1, 10) / 10)
    assert ref["edges"] != pytest.approx(list(exact), rel=1e-12)


def test_bins_of_up_to_the_sample_size_are_exact() -> None:
    values = np.random.default_rng(12).normal(size=drift.QUANTILE_SAMPLE)
    ref = bins_of(values, len(values))
    assert ref["edges"] == list(np.quantile(values, np.linspace(0, 1, drift.BINS + 1)[1:-1]))


def test_reference_bins_leave_pandas_unimported() -> None:
    # Arrow's own cast and to_numpy import pandas (and pyarrow.compute): 0.3 s on the
    # first export of a process, which nothing else in an export needs.
    import subprocess
    import sys

    code = (
        "import sys, polars as pl\n"
        "from aihub.services.drift import ReferenceAccumulator\n"
        "acc = ReferenceAccumulator(['x', 'k'])\n"
        "acc.add(pl.DataFrame({'x': [None if i % 3 == 0 else float(i) for i in range(10)],"
        " 'k': pl.Series(range(10), dtype=pl.Int32)}).to_arrow())\n"
        "ref = acc.result()['features']\n"
        "assert ref['x']['n'] == 6 and ref['k']['n'] == 10, ref\n"
        "print('pandas' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_reference_thread_computes_the_bins_once_after_the_last_table_and_never_raises(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # An export feeds its tables to the bins' own thread as it writes them; after the last
    # one the bins are computed there (beside the last write), and the export's later ask
    # finds them done. A table that fails to go in is logged and left out of the counts
    # (the export then reads its file back), never raised.
    import polars as pl

    calls: list[int] = []
    real = drift.bins_of
    monkeypatch.setattr(drift, "bins_of", lambda v, n: calls.append(len(v)) or real(v, n))
    acc = drift.ReferenceAccumulator(["x"])
    bins = drift.ReferenceThread(acc)
    bins.add(pl.DataFrame({"x": [1.0, None, 3.0]}).to_arrow())
    bins.add(pl.DataFrame({"y": [1.0]}).to_arrow())  # no column x: fails
    bins.add(pl.DataFrame({"x": [4.0, 5.0]}).to_arrow(), last=True)
    bins.close()
    assert calls == [4]  # computed once, on the thread, over every value that went in
    ref = acc.result()
    assert calls == [4]
    assert acc.total == 5 and ref["features"]["x"]["n"] == 4
    assert ref["features"]["x"]["null_rate"] == pytest.approx(0.2)
    assert "reference bins" in caplog.text
