"""``aihub models ...`` end to end on a temporary data dir (the real CLI entry point)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.registry.models import lightgbm_text


@pytest.fixture
def aihub(tmp_path: Path):  # type: ignore[no-untyped-def]
    env = {"AIHUB_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200",
           "PATH": "/usr/bin:/bin", "PYTHONPATH": os.environ.get("PYTHONPATH", "")}

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-c", "from aihub.cli import main; main()", *args],
                              capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
        assert (done.returncode == 0) == ok, done.stdout + done.stderr
        return done

    return run


def test_models_commands(aihub, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    model = tmp_path / "model.txt"
    model.write_bytes(lightgbm_text())
    out = aihub("models", "register", "-t", "t1", "-n", "m", "-v", "v1.0.0", "-f", "a",
                "-m", "rmse=2.5", "--artifact", str(model)).stdout
    assert "registered t1:m:v1.0.0" in out
    aihub("models", "register", "-t", "t1", "-n", "m", "-v", "v1.1.0")
    assert "sha256" in aihub("models", "upload", "t1:m:v1.1.0", str(model)).stdout
    aihub("models", "promote", "t1:m:v1.0.0", "--reason", "first")
    out = aihub("models", "promote", "t1:m:v1.1.0", "--to", "production").stdout
    assert "archived t1:m:v1.0.0" in out
    listed = aihub("models", "list", "-t", "t1").stdout
    assert listed.index("t1:m:v1.1.0") < listed.index("t1:m:v1.0.0")
    assert "production" in aihub("models", "show", "t1:m:production").stdout
    assert "first" in aihub("models", "history", "t1:m:v1.0.0").stdout
    dest = tmp_path / "out.txt"
    assert "sha256 ok" in aihub("models", "download", "t1:m:production", str(dest)).stdout
    assert dest.read_bytes() == model.read_bytes()
    refused = aihub("models", "delete", "t1:m:v1.1.0", ok=False)
    assert refused.returncode == 2
    assert "force=true" in refused.stderr
    assert "Traceback" not in refused.stderr
    aihub("models", "delete", "t1:m:v1.1.0", "--force")
    assert "1 in all" in aihub("models", "list").stdout


def test_bad_input_exits_2_with_message(aihub) -> None:  # type: ignore[no-untyped-def]
    bad = aihub("models", "register", "-t", "t1", "-n", "m", "-v", "1.0", ok=False)
    assert bad.returncode == 2
    assert "version" in bad.stderr
    assert "Traceback" not in bad.stderr
    missing = aihub("models", "show", "t1:m:v9.0.0", ok=False)
    assert "not found" in missing.stderr


def test_models_sweep_removes_old_orphans_only(aihub, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    model = tmp_path / "model.txt"
    model.write_bytes(lightgbm_text())
    aihub("models", "register", "-t", "t1", "-n", "m", "-v", "v1.0.0", "--artifact", str(model))
    root = tmp_path / "data" / "artifacts"
    [kept] = [p for p in root.rglob("*") if p.is_file() and ".tmp" not in p.parts]
    two_hours_ago = time.time() - 2 * 3600
    os.utime(kept, (two_hours_ago, two_hours_ago))  # old, but a version points at it

    def orphan(version: str, mtime: float) -> Path:
        path = root / "t1" / "m" / version / uuid.uuid4().hex
        path.parent.mkdir(parents=True)
        path.write_bytes(b"tree\nleft behind")
        os.utime(path, (mtime, mtime))
        return path

    old, recent = orphan("v0.9.0", two_hours_ago), orphan("v0.9.1", time.time())
    part = root / ".tmp" / "tmpkilled.part"  # what a killed upload leaves
    part.write_bytes(b"tree\nhalf")
    os.utime(part, (two_hours_ago, two_hours_ago))

    dry = aihub("models", "sweep", "--dry-run").stdout
    assert "would remove 1 orphaned object" in dry and str(old.relative_to(root)) in dry
    assert old.exists() and part.exists()
    out = aihub("models", "sweep").stdout
    assert "removed 1 orphaned object(s) and 1 unfinished upload(s)" in out, out
    assert not old.exists() and not part.exists()
    assert kept.exists() and recent.exists()
    dest = tmp_path / "out.txt"
    assert "sha256 ok" in aihub("models", "download", "t1:m:v1.0.0", str(dest)).stdout
    assert "removed 1 orphaned" in aihub("models", "sweep", "--min-age-hours", "0").stdout
    assert not recent.exists() and kept.exists()
