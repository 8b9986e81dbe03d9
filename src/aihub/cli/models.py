"""``aihub models ...``: the model registry from the command line (same services as the
API, on the configured database and artifact store)."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from aihub.cli.app import app, console, err_console, services
from aihub.errors import DigestMismatch, InvalidInput
from aihub.services.registry import RegisterRequest
from aihub.stores.metadata.models import ModelVersion, VersionFilter
from aihub.timeutil import iso

models_app = typer.Typer(help="Model registry: versions, stages, artifacts.",
                         no_args_is_help=True)
app.add_typer(models_app, name="models")

ModelId = Annotated[str, typer.Argument(help="tenant:name:version, or tenant:name:production")]


def _size(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:.2f} MB" if n >= 100_000 else f"{n} B"


def _metrics(m: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in m.items())


@models_app.command("list")
def list_models(
    tenant: Annotated[str | None, typer.Option("--tenant", "-t")] = None,
    name: Annotated[str | None, typer.Option("--name", "-n")] = None,
    stage: Annotated[str | None, typer.Option("--stage", "-s")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
) -> None:
    """Versions, grouped by model, newest (semver) first."""
    with services() as svc:
        versions, total = svc.registry.list(VersionFilter(tenant, name, stage),
                                            limit=limit, offset=offset)
    table = Table(title=f"models ({total} in all)")
    for col in ("model_id", "stage", "metrics", "artifact", "registered"):
        table.add_column(col)
    for v in versions:
        table.add_row(v.model_id, v.stage, _metrics(v.metrics),
                      f"{v.artifact_format} {_size(v.artifact_size)}" if v.artifact_key else "-",
                      iso(v.registered_at))
    console.print(table)


def _show(v: ModelVersion) -> None:
    table = Table(title=v.model_id, show_header=False)
    table.add_row("stage", v.stage)
    table.add_row("model type", v.model_type or "-")
    table.add_row("framework", v.framework or "-")
    table.add_row("metrics", _metrics(v.metrics) or "-")
    table.add_row("feature names", ", ".join(v.feature_names or []) or "-")
    table.add_row("artifact", f"{v.artifact_format}, {_size(v.artifact_size)}"
                  if v.artifact_key else "none")
    table.add_row("sha256", v.artifact_sha256 or "-")
    table.add_row("registered", iso(v.registered_at))
    table.add_row("stage since", iso(v.stage_changed_at))
    console.print(table)


@models_app.command("show")
def show(model_id: ModelId) -> None:
    """One version's metadata, metrics and artifact."""
    with services() as svc:
        _show(svc.registry.get(model_id))


def _parse_metrics(items: list[str]) -> dict[str, float]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            out[key] = float(value)
        except ValueError:
            sep = ""
        if not sep or not key:
            raise InvalidInput(f"--metric: expected name=number, got {item!r}")
    return out


@models_app.command("register")
def register(
    tenant: Annotated[str, typer.Option("--tenant", "-t")],
    name: Annotated[str, typer.Option("--name", "-n")],
    version: Annotated[str, typer.Option("--version", "-v", help="v1.2.3 or vYYYYMMDD-HHMMSS")],
    artifact: Annotated[Path | None, typer.Option(exists=True, dir_okay=False,
                                                  help="Model file to upload with it")] = None,
    framework: Annotated[str | None, typer.Option()] = None,
    model_type: Annotated[str | None, typer.Option()] = None,
    feature: Annotated[list[str] | None, typer.Option(
        "--feature", "-f", help="Feature name, in model order (repeatable)")] = None,
    metric: Annotated[list[str] | None, typer.Option(
        "--metric", "-m", help="name=value (repeatable)")] = None,
    metadata: Annotated[str | None, typer.Option(help="Extra metadata as a JSON object")] = None,
) -> None:
    """Register a version (in staging), optionally with its artifact."""
    try:
        meta: dict[str, Any] = json.loads(metadata) if metadata else {}
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"--metadata: not JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise InvalidInput("--metadata: must be a JSON object")
    for key, value in (("framework", framework), ("model_type", model_type),
                       ("feature_names", feature)):
        if value:
            meta[key] = value
    req = RegisterRequest(tenant, name, version, meta, _parse_metrics(metric or []))
    with services() as svc:
        if artifact is None:
            v = svc.registry.register(req)
        else:
            with artifact.open("rb") as fh:
                v = svc.model_artifacts.register_with_artifact(req, fh)
    console.print(f"[green]registered[/green] {v.model_id} ({v.stage})")


@models_app.command("upload")
def upload(model_id: ModelId,
           path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
           sha256: Annotated[str | None, typer.Option(help="Expected digest")] = None) -> None:
    """Upload a version's artifact (streamed; its sha256 is recorded)."""
    with services() as svc, path.open("rb") as fh:
        v = svc.model_artifacts.upload(model_id, fh, expected_sha256=sha256)
    console.print(f"[green]uploaded[/green] {_size(v.artifact_size)} "
                  f"({v.artifact_format}) sha256 {v.artifact_sha256}")


@models_app.command("download")
def download(model_id: ModelId, dest: Annotated[Path, typer.Argument(dir_okay=False)]) -> None:
    """Write a version's artifact to DEST, checking its sha256."""
    digest = hashlib.sha256()
    with services() as svc:
        version, chunks = svc.model_artifacts.open(model_id)
        with dest.open("wb") as out:
            for chunk in chunks:
                digest.update(chunk)
                out.write(chunk)
    if digest.hexdigest() != version.artifact_sha256:
        dest.unlink(missing_ok=True)
        raise DigestMismatch(f"{version.model_id}: stored artifact hashes to "
                             f"{digest.hexdigest()}, not {version.artifact_sha256}")
    console.print(f"{version.model_id} -> {dest} ({_size(version.artifact_size)}, sha256 ok)")


@models_app.command("promote")
def promote(
    model_id: ModelId,
    to: Annotated[str, typer.Option("--to", help="staging | production | archived")] = "production",
    reason: Annotated[str | None, typer.Option("--reason", "-r")] = None,
) -> None:
    """Move a version to another stage (production archives the current one)."""
    with services() as svc:
        p = svc.registry.promote(model_id, to, reason)
    console.print(f"{p.version.model_id}: {p.previous_stage} -> {p.version.stage}")
    if p.archived is not None:
        console.print(f"archived {p.archived.model_id}")


@models_app.command("delete")
def delete(model_id: ModelId,
           force: Annotated[bool, typer.Option(help="Delete even if in production")] = False
           ) -> None:
    """Delete a version and its artifact."""
    with services() as svc:
        deleted = svc.model_artifacts.delete(model_id, force=force)
    v = deleted.version
    console.print(f"deleted {v.model_id}")
    if v.artifact_key is not None and not deleted.artifact_removed:
        err_console.print(f"[yellow]warning:[/yellow] its artifact {v.artifact_key} could not "
                          "be removed now; 'aihub models sweep' removes it later")


@models_app.command("sweep")
def sweep(
    min_age_hours: Annotated[float, typer.Option(
        "--min-age-hours", min=0, help="Only objects (and unfinished uploads) older than this"
    )] = 1.0,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List, remove nothing")] = False,
) -> None:
    """Remove artifact objects no version points at (a failed removal, a killed upload)."""
    with services() as svc:
        report = svc.model_artifacts.sweep(min_age=timedelta(hours=min_age_hours),
                                           dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for key in report.removed:
        console.print(f"{verb} {key}")
    console.print(f"{verb} {len(report.removed)} orphaned object(s)"
                  + ("" if dry_run else f" and {report.partial_uploads} unfinished upload(s)")
                  + f"; kept {report.referenced} in use and {report.recent} younger than "
                  f"{min_age_hours:g} h")
    if report.failed:
        err_console.print(f"[red]error:[/red] could not remove {len(report.failed)} "
                          f"object(s): {', '.join(report.failed[:10])}")
        raise typer.Exit(1)


@models_app.command("history")
def history(model_id: ModelId) -> None:
    """Every stage transition of a version, with its reason."""
    with services() as svc:
        v, transitions = svc.registry.history(model_id)
    table = Table(title=f"{v.model_id} ({v.stage})")
    for col in ("at", "from", "to", "reason"):
        table.add_column(col)
    for t in transitions:
        table.add_row(iso(t.at), t.from_stage or "-", t.to_stage, t.reason or "")
    console.print(table)
