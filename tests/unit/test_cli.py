"""The ``aihub`` CLI: file imports with column mapping (CSV and Parquet), naive files with
``--timezone``, bad rows reported by row and column with exit code 2 and nothing stored,
``aihub export`` writing a file, and a working ``--help`` on every command."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import click
import polars as pl
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from aihub.cli import app, main
from aihub.config import Settings
from aihub.services.container import Services, build_services
from aihub.timeutil import to_us

T = "tenant-cli"
AIHUB = str(Path(sys.executable).parent / "aihub")


@pytest.fixture
def env(settings: Settings) -> dict[str, str]:
    return {"AIHUB_DATA_DIR": str(settings.data_dir),
            "EXPORT_STORAGE_PATH": settings.export_storage_path}


@pytest.fixture
def run(env: dict[str, str]) -> Iterator[object]:
    runner = CliRunner()

    def invoke(*args: str) -> click.testing.Result:
        return runner.invoke(app, list(args), env=env)

    yield invoke


@pytest.fixture
def store(settings: Settings) -> Iterator[Services]:
    svc = build_services(settings)
    yield svc
    svc.close()


def stored(svc: Services, asset_id: str) -> list[tuple[int, float]]:
    found = svc.timeseries.get_assets(T, [asset_id])
    if not found:
        return []
    return svc.timeseries.load_readings(found[0].key, 0, 2**62).rows()  # type: ignore[return-value]


def us(*args: int) -> int:
    return to_us(datetime(*args, tzinfo=UTC))  # type: ignore[misc]


class Done:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def cli(env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Callable[..., Done]:
    """Runs ``aihub.cli.main`` (the console script's entry: error -> message + exit code)
    in this process; ``real=True`` runs the installed script in a subprocess instead."""

    def invoke(*args: str, real: bool = False) -> Done:
        if real:
            p = subprocess.run([AIHUB, *args], env={**os.environ, **env, "COLUMNS": "200"},
                               capture_output=True, text=True, timeout=120)
            return Done(p.returncode, p.stdout, p.stderr)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        monkeypatch.setattr(sys, "argv", ["aihub", *args])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out = capsys.readouterr()
        return Done(code, out.out, out.err)

    return invoke


# -- imports ----------------------------------------------------------------------------------


def test_csv_with_column_mapping(run, store: Services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "m.csv"
    f.write_text("meter,time,kwh,ignored\n"
                 "a1,2024-01-01T00:15:00Z,1.5,x\n"
                 "a1,2024-01-01T01:15:00+01:00,2.5,y\n"  # = 00:15Z: replaces the first row
                 "a2,2024-01-01T00:30:00Z,3,z\n")
    r = run("ingest", "readings", str(f), "--tenant", T, "--asset-col", "meter",
            "--ts-col", "time", "--value-col", "kwh")
    assert r.exit_code == 0, r.output
    assert stored(store, "a1") == [(us(2024, 1, 1, 0, 15), 2.5)]
    assert stored(store, "a2") == [(us(2024, 1, 1, 0, 30), 3.0)]


def test_parquet_with_asset_id_and_aware_timestamps(run, store: Services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "one.parquet"
    pl.DataFrame({
        "when": pl.Series([datetime(2024, 6, 1, h, tzinfo=UTC) for h in range(3)])
        .dt.convert_time_zone("Europe/Berlin"),
        "load": [1.0, 2.0, 3.0],
    }).write_parquet(f)
    r = run("ingest", "readings", str(f), "--tenant", T, "--asset-id", "solo",
            "--ts-col", "when", "--value-col", "load")
    assert r.exit_code == 0, r.output
    assert stored(store, "solo") == [(us(2024, 6, 1, h), float(h + 1)) for h in range(3)]


def test_naive_csv_with_timezone_across_dst(run, store: Services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "local.csv"
    f.write_text("ts,value\n2024-03-31 01:30:00,1\n2024-03-31 03:30:00,2\n"
                 "2024-10-27 01:30:00,3\n")
    r = run("ingest", "readings", str(f), "--tenant", T, "--asset-id", "b1",
            "--timezone", "Europe/Berlin")
    assert r.exit_code == 0, r.output
    # 01:30 CET = 00:30Z; 03:30 CEST = 01:30Z (one hour later in elapsed time); 01:30 CEST.
    assert stored(store, "b1") == [(us(2024, 3, 31, 0, 30), 1.0), (us(2024, 3, 31, 1, 30), 2.0),
                                   (us(2024, 10, 26, 23, 30), 3.0)]


def test_naive_parquet_with_timezone(run, store: Services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "naive.parquet"
    pl.DataFrame({"asset_id": ["n1", "n1"],
                  "ts": [datetime(2024, 7, 1, 12), datetime(2024, 7, 1, 13)],
                  "value": [4.0, 5.0]}).write_parquet(f)
    r = run("ingest", "readings", str(f), "--tenant", T, "--timezone", "Asia/Kolkata")
    assert r.exit_code == 0, r.output
    assert stored(store, "n1") == [(us(2024, 7, 1, 6, 30), 4.0), (us(2024, 7, 1, 7, 30), 5.0)]


@pytest.mark.parametrize(("content", "row", "column"), [
    ("meter,time,kwh\na,2024-01-01T00:00:00Z,1\na,2024-01-01T01:00:00Z,abc\n", 1, "kwh"),
    ("meter,time,kwh\na,2024-01-01T00:00:00Z,1\na,2024-01-01T01:00:00Z,nan\n", 1, "kwh"),
    ("meter,time,kwh\na,2024-01-01T00:00:00Z,1\na,2024-01-01T01:00:00Z,inf\n", 1, "kwh"),
    ("meter,time,kwh\na,2024-01-01T00:00:00Z,1\na,2024-01-01T01:00:00Z,\n", 1, "kwh"),
    ("meter,time,kwh\na,2024-01-01T00:00:00Z,1\na,2024-01-01T01:00:00,2\n", 1, "time"),
    ("meter,time,kwh\na,2024-01-01T00:00:00Z,1\na,2024-01-01T00:30:00Z,1\na,soon,2\n", 2, "time"),
])
def test_bad_row_exits_2_naming_row_and_column_and_stores_nothing(
    cli: Callable[..., Done], store: Services, tmp_path: Path, content: str, row: int, column: str
) -> None:
    f = tmp_path / "bad.csv"
    f.write_text(content)
    done = cli("ingest", "readings", str(f), "--tenant", T, "--asset-col", "meter",
               "--ts-col", "time", "--value-col", "kwh",
               real="abc" in content)  # one case through the installed console script
    assert done.returncode == 2, (done.stdout, done.stderr)
    message = " ".join(done.stderr.split())
    assert f"row {row}" in message and f"'{column}'" in message, message
    assert "Traceback" not in done.stderr
    assert not store.timeseries.tenant_exists(T)


def test_bad_timezone_option_and_missing_file(cli: Callable[..., Done], store: Services,
                                               tmp_path: Path) -> None:
    f = tmp_path / "x.csv"
    f.write_text("asset_id,ts,value\na,2024-01-01 00:00:00,1\n")
    done = cli("ingest", "readings", str(f), "--tenant", T, "--timezone", "Nowhere/City")
    assert done.returncode == 2 and "Nowhere/City" in done.stderr
    done = cli("ingest", "readings", str(tmp_path / "missing.csv"), "--tenant", T)
    assert done.returncode == 2 and "missing.csv" in " ".join(done.stderr.split())
    assert not store.timeseries.tenant_exists(T)


def test_weather_import(run, store: Services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "w.csv"
    f.write_text("time,temperature,humidity\n2024-01-01T00:00:00Z,4.5,80\n")
    r = run("ingest", "weather", str(f), "--tenant", T, "--location-id", "berlin",
            "--ts-col", "time")
    assert r.exit_code == 0, r.output
    w = store.timeseries.load_weather(T, ["berlin"], 0, 2**62)
    assert w.select("ts", "temperature", "humidity").rows() == [(us(2024, 1, 1), 4.5, 80.0)]


# -- export, exports, status ------------------------------------------------------------------


def test_export_writes_a_parquet_file(run, store: Services, tmp_path: Path,  # type: ignore[no-untyped-def]
                                      settings: Settings) -> None:
    f = tmp_path / "m.csv"
    f.write_text("asset_id,ts,value\n" + "".join(
        f"m{a},2024-01-{1 + h // 24:02d}T{h % 24:02d}:00:00Z,{a * 100 + h}\n"
        for a in (1, 2) for h in range(72)))
    assert run("ingest", "readings", str(f), "--tenant", T).exit_code == 0
    r = run("export", "--tenant", T, "--start", "2024-01-02T00:00:00Z",
            "--end", "2024-01-04T00:00:00Z", "-s", "forecast_basic", "-a", "m2")
    assert r.exit_code == 0, r.output
    files = list(Path(settings.export_storage_path).glob("*.parquet"))
    assert len(files) == 1
    table = pq.read_table(files[0])
    assert table.num_rows == 48
    assert set(table.column("asset_id").to_pylist()) == {"m2"}
    assert table.column("target").to_pylist() == [200.0 + h for h in range(24, 72)]
    records, total = store.exports.list(T, limit=10, offset=0)
    assert total == 1 and records[0].row_count == 48 and records[0].status == "completed"
    listing = run("exports", "--tenant", T)
    assert listing.exit_code == 0 and records[0].export_id in listing.output
    status = run("status", "--tenant", T)
    assert status.exit_code == 0 and "144" in status.output


def test_export_with_bad_input_exits_2(cli: Callable[..., Done], tmp_path: Path,
                                       settings: Settings) -> None:
    done = cli("export", "--tenant", "nobody", "--start", "2024-01-01T00:00:00Z",
               "--end", "2024-01-02T00:00:00Z")
    assert done.returncode == 2 and "nobody" in done.stderr
    done = cli("export", "--tenant", T, "--start", "2024-01-01T00:00:00",
               "--end", "2024-01-02T00:00:00Z")
    assert done.returncode == 2 and "--start" in done.stderr
    assert not list(Path(settings.export_storage_path).glob("*.parquet"))


# -- help ---------------------------------------------------------------------------------------


def command_paths() -> list[tuple[str, ...]]:
    """Every command of the CLI as its path of names, groups included."""
    root = typer.main.get_command(app)
    out: list[tuple[str, ...]] = []

    def walk(cmd: click.Command, path: tuple[str, ...]) -> None:
        out.append(path)
        for name, sub in getattr(cmd, "commands", {}).items():  # typer vendors click
            walk(sub, (*path, name))

    walk(root, ())
    return out


def test_the_cli_has_the_documented_commands() -> None:
    paths = {" ".join(p) for p in command_paths()}
    assert {"ingest readings", "ingest weather", "export", "exports", "status", "serve",
            "demo"} <= paths


@pytest.mark.parametrize("path", command_paths(), ids=lambda p: " ".join(p) or "aihub")
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    r = CliRunner().invoke(app, [*path, "--help"])
    assert r.exit_code == 0, r.output
    assert "Usage" in r.output


def test_timezone_option_keeps_timestamps_that_carry_a_zone(run, store: Services,  # type: ignore[no-untyped-def]
                                                            tmp_path: Path) -> None:
    f = tmp_path / "mixed.csv"
    f.write_text("ts,value\n2024-01-01 06:00:00,1\n2024-01-01T05:30:00Z,2\n")
    r = run("ingest", "readings", str(f), "--tenant", T, "--asset-id", "mx",
            "--timezone", "Europe/Berlin")
    assert r.exit_code == 0, r.output
    assert stored(store, "mx") == [(us(2024, 1, 1, 5), 1.0), (us(2024, 1, 1, 5, 30), 2.0)]


@pytest.mark.parametrize(("local", "why"), [("2024-10-27 02:30:00", "ambiguous"),
                                             ("2024-03-31 02:30:00", "does not exist")])
def test_ambiguous_or_missing_local_time_is_named_as_such(
    cli: Callable[..., Done], store: Services, tmp_path: Path, local: str, why: str
) -> None:
    f = tmp_path / "dst.csv"
    f.write_text(f"ts,value\n2024-10-27 00:30:00,1\n{local},2\n")
    done = cli("ingest", "readings", str(f), "--tenant", T, "--asset-id", "d1",
               "--timezone", "Europe/Berlin")
    message = " ".join(done.stderr.split())
    assert done.returncode == 2 and "row 1" in message and "'ts'" in message, message
    assert why in message and "Europe/Berlin" in message, message
    assert not store.timeseries.tenant_exists(T)


def test_garbage_first_timestamp_with_timezone_is_a_row_error(cli: Callable[..., Done],
                                                             tmp_path: Path) -> None:
    f = tmp_path / "g.csv"
    f.write_text("ts,value\nsoon,1\n2024-01-01T00:00:00Z,2\n")
    done = cli("ingest", "readings", str(f), "--tenant", T, "--asset-id", "g1",
               "--timezone", "Europe/Berlin")
    message = " ".join(done.stderr.split())
    assert done.returncode == 2 and "row 0" in message and "'ts'" in message, message
    assert "Traceback" not in done.stderr
