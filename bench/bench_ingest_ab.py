"""Ingest of readings with no prior versions, alternating A/B of two or more code versions.

    .venv/bin/python bench/bench_ingest_ab.py [--assets 100] [--hours 8760] [--repeat 5]
        [--backend postgresql] [--baseline b4f734e] [--ref NAME=COMMIT ...] [--phases]

One batch of ``assets x hours`` hourly demo readings into a fresh database, each run a
worker process of its own with in-process service calls (what ``bench_knowledge.py``
measures as "ingest, no prior versions"). The versions are ``before`` (``--baseline``, the
code before knowledge time, by ``git archive``), any ``--ref`` and ``now`` (this checkout);
``--repeat`` rounds run them in turn, the order reversed every other round so drift of the
machine falls on both, and the medians are reported. Single runs on a shared 2-core machine
swing by 10-30 %; the median of alternating runs is what the guard is judged on.

``--phases`` adds, per run, where the time went: the store's steps (validation, keyed
frame, readings COPY, rollups prepared on their thread, rollups finished, the change-feed
stamp) and every SQL statement the driver ran, timed from the client (PostgreSQL), plus
the commit.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import drop_scratch_database, machine, scratch_settings

START = datetime(2024, 1, 1, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[1]


# -- the worker (runs against whichever aihub is on its PYTHONPATH) -------------------------


class _Phases:
    """Wall time spent in named calls, summed (a call inside another counts in both)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def wrap(self, owner: Any, attr: str, label: str | None = None) -> None:
        fn = getattr(owner, attr, None)
        if fn is None:
            return
        seconds = self.seconds
        name = label or attr

        def timed(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                seconds[name] += time.perf_counter() - t

        setattr(owner, attr, timed)

    def wrap_sql(self) -> None:
        """Every ``execute`` and ``copy`` of psycopg cursors, by the statement's start."""
        import psycopg

        seconds = self.seconds
        execute, copy = psycopg.Cursor.execute, psycopg.Cursor.copy

        def label(statement: Any) -> str:
            return "sql: " + " ".join(str(statement).split())[:60]

        def timed_execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return execute(self, query, *args, **kwargs)
            finally:
                seconds[label(query)] += time.perf_counter() - t

        class _TimedCopy:
            def __init__(self, cm: Any, name: str) -> None:
                self.cm, self.name = cm, name

            def __enter__(self) -> Any:
                self.t = time.perf_counter()
                return self.cm.__enter__()

            def __exit__(self, *exc: Any) -> Any:
                try:
                    return self.cm.__exit__(*exc)
                finally:
                    seconds[self.name] += time.perf_counter() - self.t

        def timed_copy(self: Any, statement: Any, *args: Any, **kwargs: Any) -> Any:
            return _TimedCopy(copy(self, statement, *args, **kwargs), label(statement))

        psycopg.Cursor.execute = timed_execute  # type: ignore[method-assign]
        psycopg.Cursor.copy = timed_copy  # type: ignore[method-assign]


def _instrument(svc: Any) -> _Phases:
    import aihub.db
    import aihub.services.ingest as ingest_module
    import aihub.stores.timeseries.sql as sql_module

    phases = _Phases()
    store_class = type(svc.ingest.store)
    for attr in (
        "_lock",
        "_ensure_assets",
        "_start_rollups",
        "_write_readings",
        "_finish_rollups",
        "_stamp",
    ):
        phases.wrap(store_class, attr)
    phases.wrap(ingest_module, "validate_readings")
    phases.wrap(sql_module, "keyed_readings")
    store_module = sys.modules[store_class.__module__]
    for attr in ("_prepare_rollups", "known_reading_tuples", "reading_tuples"):
        phases.wrap(
            store_module, attr, f"{attr} (own thread)" if attr == "_prepare_rollups" else attr
        )
    original = aihub.db.write_transaction

    def write_transaction(engine: Any) -> Any:  # times the commit (the block's exit)
        cm = original(engine)

        class _Timed:
            def __enter__(self) -> Any:
                return cm.__enter__()

            def __exit__(self, *exc: Any) -> Any:
                t = time.perf_counter()
                try:
                    return cm.__exit__(*exc)
                finally:
                    phases.seconds["commit"] += time.perf_counter() - t

        return _Timed()

    ingest_module.write_transaction = write_transaction  # type: ignore[assignment]
    if store_module.__name__.endswith("postgres"):
        phases.wrap_sql()
    return phases


def worker(args: argparse.Namespace) -> dict[str, object]:
    from aihub.db import create_db_engine, upgrade
    from aihub.demo.generator import DemoSpec, readings_frame
    from aihub.services.container import build_services
    from aihub.timeutil import to_us

    data_dir = Path(tempfile.mkdtemp(prefix="bench-ingest-ab-"))
    settings, db = scratch_settings(args.backend, data_dir, "aihub_bench_ab_")
    try:
        engine = create_db_engine(settings)
        upgrade(engine)
        engine.dispose()
        svc = build_services(settings)
        spec = DemoSpec(tenant_id="bench", assets=args.assets, hours=args.hours, start=START)
        frame = readings_frame(spec, to_us(START))
        phases = _instrument(svc) if args.phases else None
        t = time.perf_counter()
        svc.ingest.ingest_readings("bench", frame, max_rows=frame.height + 1)
        seconds = time.perf_counter() - t
        spent = dict(phases.seconds) if phases else {}
        svc.close()
    finally:
        drop_scratch_database(db)
        shutil.rmtree(data_dir, ignore_errors=True)
    out: dict[str, object] = {
        "rows": frame.height,
        "seconds": seconds,
        "per_s": frame.height / seconds,
    }
    if phases:
        out["phases"] = dict(sorted(spent.items(), key=lambda kv: -kv[1]))
    return out


# -- the orchestrator -----------------------------------------------------------------------


def _extract(commit: str) -> Path:
    base = Path(tempfile.mkdtemp(prefix=f"aihub-{commit}-"))
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", commit, "src"], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(base, filter="data")
    return base / "src"


def _run(src: Path, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        cmd = [
            sys.executable,
            __file__,
            "--worker",
            "--backend",
            args.backend,
            "--out",
            f.name,
            "--assets",
            str(args.assets),
            "--hours",
            str(args.hours),
        ]
        cmd += ["--phases"] if args.phases else []
        subprocess.run(cmd, env={**os.environ, "PYTHONPATH": str(src)}, check=True)
        return json.loads(Path(f.name).read_text())  # type: ignore[no-any-return]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--assets", type=int, default=100)
    ap.add_argument("--hours", type=int, default=8760)
    ap.add_argument("--repeat", type=int, default=5, help="rounds of every version")
    ap.add_argument("--backend", default="postgresql", choices=("postgresql", "sqlite"))
    ap.add_argument("--baseline", default="b4f734e", help="commit before knowledge time")
    ap.add_argument(
        "--ref",
        action="append",
        default=[],
        metavar="NAME=COMMIT",
        help="another version to run in each round (e.g. main=HEAD)",
    )
    ap.add_argument("--phases", action="store_true", help="time the steps of each run")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        Path(args.out).write_text(json.dumps(worker(args)))
        return
    started = machine()
    versions: dict[str, Path] = {"before": _extract(args.baseline)}
    for ref in args.ref:
        name, _, commit = ref.partition("=")
        versions[name] = _extract(commit)
    versions["now"] = REPO / "src"
    rates: dict[str, list[float]] = {name: [] for name in versions}
    order = list(versions)
    try:
        for i in range(args.repeat):
            for name in order if i % 2 == 0 else order[::-1]:
                result = _run(versions[name], args)
                rates[name].append(result["per_s"])
                print(
                    f"round {i + 1} {name}: {result['per_s']:,.0f} readings/s "
                    f"({result['seconds']:.3f} s)",
                    flush=True,
                )
                if args.phases:
                    _print_phases(result["phases"])
    finally:
        for name, src in versions.items():
            if name != "now":
                shutil.rmtree(src.parent, ignore_errors=True)
    _summary(rates, args, started)


def _print_phases(phases: dict[str, float]) -> None:
    for name, seconds in phases.items():
        if seconds >= 0.005:
            print(f"    {seconds:7.3f} s  {name}")


def _summary(rates: dict[str, list[float]], args: argparse.Namespace, started: str) -> None:
    medians = {name: statistics.median(r) for name, r in rates.items()}
    print(
        f"\n{args.backend}, {args.assets} assets x {args.hours} h, {args.repeat} rounds "
        f"alternating ({started}; load average at the end {os.getloadavg()[0]:.2f})"
    )
    for name, r in rates.items():
        runs = " / ".join(f"{x:,.0f}" for x in r)
        print(
            f"  {name}: median {medians[name]:,.0f} readings/s ({runs}); "
            f"{medians[name] / medians['before']:.2f}x before"
        )
    ratios = [a / b for a, b in zip(rates["now"], rates["before"], strict=True)]
    print(f"  now / before per round: {', '.join(f'{x:.2f}' for x in ratios)}")


if __name__ == "__main__":
    main()
