"""Hot online get of this source tree against another (e.g. main's) and the floor, in
alternating rounds of the same run: on a shared, loaded machine the ratio to the floor
moves with the load for every version of aihub, so a change is judged against the code it
replaces, measured under the same load.

    .venv/bin/python bench/bench_hot_get_ab.py --other /path/to/other/src [--rounds 5]

Each tree serves the embedded default (``aihub serve``, one worker) with one asset of a day
of readings; one keep-alive client times ``POST /ai/features/get`` (hot cache) 3,000 times
per round. Results replace the "Hot online get, A/B" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    AIHUB,
    free_port,
    latencies,
    machine,
    post_json,
    process,
    summary,
    write_section,
)

HERE = Path(__file__).resolve().parents[1] / "src"
BODY = json.dumps({"tenant_id": "t", "asset_id": "m1", "feature_set": "forecast_basic",
                   "lookback_hours": 168, "as_of": "2024-01-02T06:00:00Z"}).encode()
ROWS = [{"asset_id": "m1", "ts": f"2024-01-01T{h:02d}:00:00Z", "value": float(h)}
        for h in range(24)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--other", required=True, help="the src/ directory to compare against")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--no-write", action="store_true", help="don't update RESULTS.md")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="aihub-ab-"))
    trees = {"this tree": str(HERE), "other tree": str(Path(args.other).resolve())}
    ports = {name: free_port() for name in [*trees, "floor"]}
    load_start = machine()
    p50s: dict[str, list[float]] = {name: [] for name in ports}
    with contextlib.ExitStack() as stack:
        for i, (name, src) in enumerate(trees.items()):
            env = {"PYTHONPATH": src, "AIHUB_DATA_DIR": str(work / str(i)),
                   "FEATURE_CACHE_TTL": "3600"}
            stack.enter_context(process([AIHUB, "serve", "--port", str(ports[name]),
                                         "--log-level", "warning"], env, ports[name]))
            post_json(ports[name], "/ai/features/ingest", {"tenant_id": "t", "readings": ROWS})
        floor = [sys.executable, "-m", "uvicorn", "floor_app:create_app", "--factory",
                 "--port", str(ports["floor"]), "--log-level", "warning", "--no-access-log"]
        stack.enter_context(process(floor, {"PYTHONPATH": str(Path(__file__).parent)},
                                    ports["floor"], ready_path="/docs"))
        for _ in range(args.rounds):
            for name, port in ports.items():
                path = "/floor" if name == "floor" else "/ai/features/get"
                p50s[name].append(summary(latencies(port, path, BODY, args.requests))["p50_ms"])
    best = {name: min(v) for name, v in p50s.items()}
    load_end = os.getloadavg()[0]
    lines = [
        f"Machine: {load_start}, {load_end:.2f} at the end. "
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; other tree: `{args.other}`.",
        "",
        "| server | best p50 | p50 per round (ms) | / floor |",
        "|---|---|---|---|",
        *(f"| {name} | {best[name]:.3f} ms | {' '.join(f'{x:.3f}' for x in p50s[name])} | "
          f"{best[name] / best['floor']:.2f}x |" for name in p50s),
        "",
        f"This tree / other tree: **{best['this tree'] / best['other tree']:.2f}x** "
        "(best p50 each, rounds alternating).",
        "",
        "Reproduce: `.venv/bin/python bench/bench_hot_get_ab.py --other ../main/src`.",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section("Hot online get, A/B against the code it replaces", text)


if __name__ == "__main__":
    main()
