"""``aihub demo``: the demo tenant, end to end."""

from __future__ import annotations

from typing import Annotated

import typer

from aihub.cli.app import app, console, progress_bar, services
from aihub.demo.generator import DemoSpec


@app.command("demo")
def demo(
    assets: Annotated[int, typer.Option(min=1, max=1000, help="Meters to generate")] = 10,
    days: Annotated[int, typer.Option(min=14, max=3660, help="Days of history")] = 60,
    force: Annotated[bool, typer.Option(help="Regenerate even if already loaded")] = False,
) -> None:
    """Load the demo tenant (tenant-123): meters with a realistic load shape up to the
    current hour and Berlin weather including a 48-hour forecast."""
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
