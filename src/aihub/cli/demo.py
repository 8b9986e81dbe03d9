"""``aihub demo``: the demo tenant, end to end: data, features, a trained and registered
LightGBM model in production, a 24-hour forecast and a plot of it against actual load."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from aihub.cli.app import app, console, progress_bar, services
from aihub.demo.generator import DemoSpec


@app.command("demo")
def demo(
    assets: Annotated[int, typer.Option(min=1, max=1000, help="Meters to generate")] = 10,
    days: Annotated[int, typer.Option(min=14, max=3660, help="Days of history")] = 60,
    force: Annotated[bool, typer.Option(help="Regenerate even if already loaded")] = False,
    train: Annotated[bool, typer.Option(help="Train, register, promote and forecast")] = True,
    meters: Annotated[int, typer.Option(min=1, max=10, help="Meters to forecast")] = 3,
    plot: Annotated[Path, typer.Option(help="Where to save the forecast PNG")] = Path(
        "demo_forecast.png"),
) -> None:
    """Load the demo tenant (tenant-123): meters with a realistic load shape up to the
    current hour and Berlin weather including a 48-hour forecast. Then the full loop:
    export features, train LightGBM, evaluate on the last week (held out), register with
    rmse/mae/r2/mape, upload, promote to production, forecast tomorrow. Training rows are
    forecasts at 10:00 Berlin for the next local day, each as known at its origin; the same
    model trained on what is known now is scored next to it (the leak, made visible)."""
    from aihub.demo.loader import load_demo

    spec = DemoSpec(assets=assets, hours=days * 24)
    with services() as svc, progress_bar() as bar:
        task = bar.add_task("demo data", total=assets * days * 24)
        loaded = load_demo(svc, spec, force=force, progress=lambda n: bar.advance(task, n))
    if loaded.skipped:
        console.print(f"demo tenant {loaded.tenant_id} already loaded and current")
    else:
        console.print(f"loaded {loaded.readings} readings for {len(loaded.assets)} meters of "
                      f"[bold]{loaded.tenant_id}[/bold], {loaded.weather} weather rows")
    if train:
        _train_and_forecast(spec, meters=min(meters, assets), plot=plot)


def _print_comparison(run: object) -> None:
    """The held-out week three ways: what production will see, and what a leaky backtest
    would have claimed."""
    comparison = getattr(run, "comparison", {})
    if not comparison:
        return
    table = Table(title="held-out week, day-ahead (the honest comparison)")
    for col in ("trained on", "scored on", "rmse", "mae", "mape %", ""):
        table.add_column(col)
    notes = {
        ("origin", "origin"): "what production will see",
        ("latest", "origin"): "the leaky model, in production",
        ("latest", "latest"): "the leaky backtest (observed weather, corrected history)",
    }
    for (trained, scored), m in comparison.items():
        table.add_row(trained, scored, f"{m['rmse']:.3f}", f"{m['mae']:.3f}",
                      f"{m['mape']:.2f}", notes.get((trained, scored), ""))
    console.print(table)
    honest, flattered = comparison[("origin", "origin")], comparison[("latest", "latest")]
    ratio = flattered["rmse"] / honest["rmse"] if honest["rmse"] else float("nan")
    console.print(f"the leaky backtest reports {ratio:.0%} of the rmse production will see"
                  + (" (it flatters the model)" if ratio < 1 else ""))


def _train_and_forecast(spec: DemoSpec, *, meters: int, plot: Path) -> None:
    from aihub.demo.pipeline import run_demo_pipeline
    from aihub.demo.plot import plot_forecast
    from aihub.timeutil import floor_hour, utcnow

    start = floor_hour(utcnow()) - timedelta(hours=spec.hours)
    with services() as svc, console.status("export -> train -> evaluate -> register"):
        run = run_demo_pipeline(svc, spec.tenant_id, history_start=start,
                                meters=spec.asset_ids()[:meters])
    m = run.metrics
    console.print(f"trained on {run.train_rows} day-ahead rows (origins 10:00 Berlin, horizons "
                  f"14..37, as known at each origin) before {run.split_at:%Y-%m-%d %H:%M}Z, "
                  f"evaluated on {run.test_rows} later rows: rmse {m['rmse']:.3f}, "
                  f"mae {m['mae']:.3f}, r2 {m['r2_score']:.3f}, mape {m['mape']:.2f}%")
    _print_comparison(run)
    console.print(f"registered, uploaded and promoted [bold]{run.model_id}[/bold] to production"
                  + (f" (archived {run.archived})" if run.archived else ""))
    origin = f" from {run.origin:%Y-%m-%d %H:%M}Z" if run.origin else ""
    table = Table(title=f"forecast, next 24 hours of tomorrow{origin} (kW, hourly mean)")
    table.add_column("hour (UTC)")
    for meter in run.meters:
        table.add_column(meter, justify="right")
    wide = run.forecast.pivot(index="timestamp", columns="asset_id", values="prediction")
    for ts, row in wide.iterrows():
        table.add_row(f"{ts:%Y-%m-%d %H:%M}", *(f"{row[m]:.2f}" for m in run.meters))
    console.print(table)
    console.print(f"plot: {plot_forecast(run, plot)}")
