#!/usr/bin/env python3
"""One entry point for a fresh machine with nothing but Python 3.11+.

    python3 dev.py up      # venv + install, load the demo tenant, serve on :8003
    python3 dev.py test    # venv + install (with test tools), run the whole suite
    python3 dev.py <args>  # any other aihub command, e.g. `python3 dev.py models list`

The virtual environment lives in .venv and is reinstalled only when pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"


def ensure_env(extras: str) -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"aihub needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not PY.exists():
        print(f"creating {VENV} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16]
    stamp = VENV / f".installed-{extras or 'base'}-{digest}"
    if stamp.exists():
        return
    print("installing aihub and its dependencies (first run takes a few minutes) ...",
          flush=True)
    subprocess.check_call([str(PY), "-m", "pip", "install", "-q", "--upgrade", "pip"])
    target = f".[{extras}]" if extras else "."
    subprocess.check_call([str(PY), "-m", "pip", "install", "-q", "-e", target], cwd=ROOT)
    for old in VENV.glob(f".installed-{extras or 'base'}-*"):
        old.unlink()
    stamp.touch()


def ensure_chromium() -> None:
    """The dashboard's browser tests drive Debian's chromium (never a downloaded browser)."""
    if shutil.which("chromium"):
        return
    if hasattr(os, "geteuid") and os.geteuid() == 0 and Path("/etc/debian_version").exists():
        print("installing chromium for the dashboard's browser tests ...", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.check_call(["apt-get", "update", "-qq"], env=env)
        subprocess.check_call(["apt-get", "install", "-y", "-qq", "chromium"], env=env)
        return
    print("chromium is not installed: the dashboard's browser tests (tests/dashboard) will be "
          "skipped. Install it (Debian/Ubuntu: 'sudo apt-get install chromium') or point "
          "AIHUB_CHROMIUM at a Chromium binary.", file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "up"
    if command == "test":
        ensure_env("dev")
        ensure_chromium()
        code = subprocess.call([str(PY), "-m", "pytest", *argv[1:]], cwd=ROOT)
        if code == 5:
            print("pytest collected no tests: that is a failure here", file=sys.stderr)
            return 1
        return code
    ensure_env("")
    aihub = str(BIN / "aihub")
    if command == "up":
        return subprocess.call([aihub, "serve", "--demo", *argv[1:]], cwd=ROOT)
    return subprocess.call([aihub, *argv], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
