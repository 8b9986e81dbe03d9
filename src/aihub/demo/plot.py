"""The demo's PNG: per meter, the held-out week's actual load against the registered
model's forecast, then the next 24 hours' forecast. Matplotlib's Agg backend: no display."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aihub.demo.pipeline import DemoRun


def plot_forecast(run: DemoRun, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(run.meters), 1, figsize=(12, 3.2 * len(run.meters)),
                             sharex=True, squeeze=False)
    for ax, meter in zip(axes[:, 0], run.meters, strict=True):
        held = run.held_out[run.held_out["asset_id"] == meter].sort_values("timestamp")
        ahead = run.forecast[run.forecast["asset_id"] == meter].sort_values("timestamp")
        ax.plot(held["timestamp"], held["target"], color="black", lw=1.2, label="actual")
        ax.plot(held["timestamp"], held["prediction"], color="tab:blue", lw=1,
                label="forecast (held-out week)")
        ax.plot(ahead["timestamp"], ahead["prediction"], color="tab:orange", lw=1.5,
                ls="--", label="forecast (next 24 h)")
        ax.set_title(meter, loc="left", fontsize=10)
        ax.set_ylabel("kW (hourly mean)")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(loc="upper right", fontsize=8)
    m = run.metrics
    fig.suptitle(f"{run.model_id}  held-out rmse {m['rmse']:.2f}, mae {m['mae']:.2f}, "
                 f"r2 {m['r2_score']:.3f}, mape {m['mape']:.1f}%", fontsize=11)
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
