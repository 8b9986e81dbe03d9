"""``aihub models performance|compare|drift|purge-predictions``: forecast monitoring from
the command line (the same services as the API)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from aihub.cli.app import console, services
from aihub.cli.export import _when
from aihub.cli.models import ModelId, models_app
from aihub.errors import InvalidInput
from aihub.services.performance import GROUP_BY, Score


def _num(v: float | None, digits: int = 4) -> str:
    return "-" if v is None else f"{v:.{digits}g}"


def _window(start: str | None, end: str | None) -> tuple[datetime | None, datetime | None]:
    return (_when(start, "--start") if start else None, _when(end, "--end") if end else None)


Start = Annotated[str | None, typer.Option(help="First target hour, ISO 8601 with zone")]
End = Annotated[str | None, typer.Option(help="End of the target window (exclusive)")]


def _score_cells(s: Score) -> list[str]:
    return [str(s.n), _num(s.mae), _num(s.rmse), _num(s.bias), _num(s.nmae),
            _num(s.skill_persistence, 3), _num(s.skill_seasonal, 3)]


_SCORE_COLUMNS = ("n", "mae", "rmse", "bias", "nmae", "skill vs persistence",
                  "skill vs seasonal naive")


@models_app.command("performance")
def performance(
    model_id: ModelId,
    by: Annotated[str, typer.Option("--by", help="none, horizon, asset or day")] = "none",
    start: Start = None,
    end: End = None,
) -> None:
    """Accuracy of a version's logged forecasts against the actuals."""
    if by not in GROUP_BY:
        raise InvalidInput(f"--by must be one of {', '.join(GROUP_BY)}")
    s, e = _window(start, end)
    with services() as svc:
        p = svc.performance.performance(model_id, group_by=by, start=s, end=e)
    table = Table(title=f"{p.version.model_id}: {p.with_actual} of {p.predicted} logged "
                        "forecasts have an actual")
    table.add_column(by if by != "none" else "")
    for col in (*_SCORE_COLUMNS[:5], "mape", "mape_n", *_SCORE_COLUMNS[5:]):
        table.add_column(col, justify="right")
    for g in p.groups:
        cells = _score_cells(g)
        table.add_row("all" if g.key is None else str(g.key), *cells[:5], _num(g.mape),
                      str(g.mape_n), *cells[5:])
    console.print(table)


@models_app.command("compare")
def compare(
    name: Annotated[str, typer.Argument(help="tenant:name of the model")],
    start: Start = None,
    end: End = None,
) -> None:
    """Every version of a model scored on the forecasts all of them logged."""
    tenant, sep, model_name = name.partition(":")
    if not sep or not model_name:
        raise InvalidInput("NAME is tenant:model_name")
    s, e = _window(start, end)
    with services() as svc:
        c = svc.performance.compare_model(tenant, model_name, start=s, end=e)
    table = Table(title=f"{name}: {c.common_rows} common rows")
    table.add_column("model_id")
    table.add_column("stage")
    for col in _SCORE_COLUMNS:
        table.add_column(col, justify="right")
    for v, score in c.versions:
        table.add_row(v.model_id, v.stage, *_score_cells(score))
    console.print(table)


@models_app.command("drift")
def drift(model_id: ModelId, start: Start = None, end: End = None) -> None:
    """Served features of a version against its training export (PSI, null rates)."""
    s, e = _window(start, end)
    with services() as svc:
        d = svc.drift.drift(model_id, start=s, end=e)
    table = Table(title=f"{d.model_id} vs export {d.export_id} ({d.served_rows} served rows)")
    for col in ("feature", "psi", "null rate (train)", "null rate (served)", "drifted"):
        table.add_column(col, justify="left" if col == "feature" else "right")
    for feature, f in d.features.items():
        table.add_row(feature, _num(f.psi, 3), _num(f.null_rate_train, 3),
                      _num(f.null_rate_served, 3), "[red]yes[/red]" if f.drifted else "no")
    console.print(table)


@models_app.command("purge-predictions")
def purge_predictions() -> None:
    """Delete logged predictions older than AIHUB_PREDICTION_LOG_DAYS (by target)."""
    with services() as svc:
        n = svc.prediction_log.purge()
        days = svc.prediction_log.retention_days
    console.print(f"purged {n} logged predictions older than {days} days")
