"""``aihub ingest`` of files in chunks (``--chunk-rows``), on both configurations: a file of
several chunks stores exactly its rows, as one pass would; a bad row in a later chunk stops
the import with how far it got (the chunks before it stay stored, its own is not), and the
rerun after the fix leaves the store exactly as a clean import of the fixed file does."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from aihub.cli import main
from aihub.config import Settings
from aihub.services.container import Services, build_services
from aihub.timeutil import to_us

pytestmark = pytest.mark.backends

START = datetime(2024, 3, 30, tzinfo=UTC)
ASSETS = ("c1", "c2", "c3")
HOURS = 10  # x 4 readings an hour x 3 assets = 120 rows


def settings_env(settings: Settings) -> dict[str, str]:
    env = {"AIHUB_DATA_DIR": str(settings.data_dir),
           "EXPORT_STORAGE_PATH": settings.export_storage_path}
    for name, value in (("DATABASE_URL", settings.database_url),
                        ("REDIS_URL", settings.redis_url),
                        ("AIHUB_REDIS_PREFIX", settings.redis_key_prefix)):
        if value:
            env[name] = value
    return env


Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Cli:
    """The console script's entry in this process: (exit code, stdout, stderr)."""
    for k, v in settings_env(settings).items():
        monkeypatch.setenv(k, v)

    def invoke(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["aihub", *args])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out = capsys.readouterr()
        return code, out.out, " ".join(out.err.split())

    return invoke


@pytest.fixture
def store(settings: Settings) -> Iterator[Services]:
    svc = build_services(settings)
    yield svc
    svc.close()


def readings() -> pl.DataFrame:
    """Quarter-hourly readings of three meters, asset by asset, as a meter export has them,
    plus a correction at the end: a later row for a time already sent (in another chunk)."""
    rows = [(a, START + timedelta(minutes=15 * q), float(i * 1000 + q) / 4)
            for i, a in enumerate(ASSETS) for q in range(HOURS * 4)]
    rows.append(("c1", START + timedelta(minutes=30), -7.25))
    return pl.DataFrame(rows, schema={"asset_id": pl.String, "ts": pl.Datetime("us", "UTC"),
                                      "value": pl.Float64}, orient="row")


def write(frame: pl.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        frame.with_columns(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%SZ")).write_csv(path)
    else:
        frame.write_parquet(path, row_group_size=16)
    return path


def content(svc: Services, tenant: str) -> dict[str, tuple[list[tuple[int, float]], list[tuple]]]:  # type: ignore[type-arg]
    """Every asset's stored readings and hourly rollups."""
    out = {}
    for asset in svc.timeseries.get_assets(tenant, list(ASSETS)):
        stored = svc.timeseries.load_readings(asset.key, 0, 2**62).rows()
        rollups = svc.timeseries.load_rollups([asset.key], 0, 2**62).drop("asset_key").rows()
        out[asset.asset_id] = (stored, rollups)
    return out


def expected_readings(frame: pl.DataFrame, asset: str) -> list[tuple[int, float]]:
    mine = frame.filter(pl.col("asset_id") == asset).with_columns(
        pl.col("ts").dt.epoch("us")).unique("ts", keep="last").sort("ts")
    return list(mine.select("ts", "value").iter_rows())


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_file_of_many_chunks_stores_exactly_its_rows(cli: Cli, store: Services,
                                                       tmp_path: Path, suffix: str) -> None:
    frame = readings()
    f = write(frame, tmp_path / f"r{suffix}")
    code, out, err = cli("ingest", "readings", str(f), "--tenant", "chunked",
                         "--chunk-rows", "17")
    assert code == 0, err
    assert "8 chunk(s)" in " ".join(out.split())  # 121 rows in chunks of 17
    stored = content(store, "chunked")
    assert sorted(stored) == list(ASSETS)
    for asset in ASSETS:
        assert stored[asset][0] == expected_readings(frame, asset)
    assert stored["c1"][0][2] == (to_us(START + timedelta(minutes=30)), -7.25)
    # One pass over the whole file (one chunk) stores the same readings and rollups.
    code, _, err = cli("ingest", "readings", str(f), "--tenant", "whole")
    assert code == 0, err
    whole = content(store, "whole")
    assert {a: r for a, (r, _) in whole.items()} == {a: r for a, (r, _) in stored.items()}
    for asset in ASSETS:  # the hour's std may differ in the last bit (summation order)
        assert whole[asset][1] == [pytest.approx(row, rel=1e-12) for row in stored[asset][1]]


def test_a_bad_row_in_a_later_chunk_reports_progress_and_the_rerun_completes(
    cli: Cli, store: Services, tmp_path: Path
) -> None:
    frame = readings()
    text = frame.with_columns(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
                              pl.col("value").cast(pl.String))
    broken = text.with_columns(
        pl.when(pl.int_range(pl.len()) == 75).then(pl.lit("n/a")).otherwise("value")
        .alias("value"))
    f = tmp_path / "r.csv"
    broken.write_csv(f)
    code, _, err = cli("ingest", "readings", str(f), "--tenant", "t1", "--chunk-rows", "30")
    assert code == 2
    assert "row 75, column 'value': not a number" in err, err
    assert "rows 0..59 (2 chunk(s), 60 rows) are stored" in err, err
    assert "chunk from row 60 on is not" in err, err
    assert "Traceback" not in err
    partial = content(store, "t1")
    # Rows 0..59: all of c1 (40) and the first 20 of c2; nothing of rows 60..89.
    assert partial["c1"][0] == expected_readings(frame.head(40), "c1")
    assert partial["c2"][0] == expected_readings(frame.head(60), "c2")
    assert "c3" not in partial

    text.write_csv(f)  # fixed
    code, _, err = cli("ingest", "readings", str(f), "--tenant", "t1", "--chunk-rows", "30")
    assert code == 0, err
    code, _, err = cli("ingest", "readings", str(f), "--tenant", "t2", "--chunk-rows", "30")
    assert code == 0, err
    assert content(store, "t1") == content(store, "t2")
    assert content(store, "t1")["c3"][0] == expected_readings(frame, "c3")


def test_a_bad_row_in_the_first_chunk_stores_nothing(cli: Cli, store: Services,
                                                     tmp_path: Path) -> None:
    f = tmp_path / "r.csv"
    f.write_text("asset_id,ts,value\nb1,2024-01-01T00:00:00Z,1\nb1,2024-01-01T01:00:00,2\n"
                 + "".join(f"b1,2024-01-02T{h:02d}:00:00Z,3\n" for h in range(10)))
    code, _, err = cli("ingest", "readings", str(f), "--tenant", "t3", "--chunk-rows", "5")
    assert code == 2 and "row 1, column 'ts'" in err and "stored" in err, err
    assert "are stored" not in err
    assert not store.timeseries.tenant_exists("t3")


def test_weather_in_chunks(cli: Cli, store: Services, tmp_path: Path) -> None:
    f = tmp_path / "w.parquet"
    hours = [START + timedelta(hours=h) for h in range(50)]
    pl.DataFrame({"location_id": ["berlin"] * 50, "ts": hours,
                  "temperature": [float(h) / 2 for h in range(50)]}).write_parquet(f)
    code, _, err = cli("ingest", "weather", str(f), "--tenant", "tw", "--chunk-rows", "7")
    assert code == 0, err
    w = store.timeseries.load_weather("tw", ["berlin"], 0, 2**62)
    assert w.select("ts", "temperature").rows() == [(to_us(t), h / 2)
                                                   for h, t in enumerate(hours)]


def test_csv_blocks_are_cut_between_rows_never_inside_a_quoted_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aihub.cli import file_chunks

    monkeypatch.setattr(file_chunks, "_CSV_BLOCK_BYTES", 23)  # cuts fall everywhere
    f = tmp_path / "q.csv"
    f.write_text('asset_id,note,ts,value\n' + "".join(
        f'q{i},"a, ""quoted""\nnote {i}",2024-01-01T{i:02d}:00:00Z,{i}.5\n' for i in range(20)))
    chunks = list(file_chunks.read_chunks(f, None, 6))
    assert [c.height for c in chunks] == [6, 6, 6, 2]
    whole = pl.read_csv(f, infer_schema=False)
    assert pl.concat(chunks).equals(whole)
    assert chunks[0].row(1) == ("q1", 'a, "quoted"\nnote 1', "2024-01-01T01:00:00Z", "1.5")
    assert file_chunks.count_rows(f, None) >= 20
