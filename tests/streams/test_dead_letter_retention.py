"""Dead letters are kept AIHUB_DEAD_LETTER_DAYS: purged by the API's and the stream's
background task and by ``aihub stream purge-dead-letters``; listed by
``aihub stream dead-letters``."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from aihub.api.app import create_app
from aihub.db import write_transaction
from aihub.services.container import Services
from aihub.streams.dead_letters import (
    DeadLetter,
    DeadLetterPurger,
    DeadLetterService,
    DeadLetterStore,
)
from aihub.timeutil import utcnow

NOW = utcnow()


def letters(services: Services, **ages_days: float) -> None:
    """One dead letter of tenant ``t1`` per keyword, received that many days ago."""
    with write_transaction(services.engine) as conn:
        DeadLetterStore().insert(conn, [
            DeadLetter.of("t1", f"aihub/t1/readings/{name}", b"{bad", f"reason {name}",
                          NOW - timedelta(days=age)) for name, age in ages_days.items()])


def topics(services: Services) -> list[str]:
    page, total = DeadLetterService(services.engine).page("t1", limit=100, offset=0)
    assert total == len(page)
    return sorted(d.topic.rsplit("/", 1)[1] for d in page)


@pytest.mark.backends
def test_purge_deletes_only_letters_older_than_the_retention(services: Services) -> None:
    letters(services, ancient=400, old=30.5, recent=29.5, today=0)
    service = DeadLetterService(services.engine)
    assert service.purge(30, now=NOW) == 2
    assert topics(services) == ["recent", "today"]
    assert service.purge(30, now=NOW) == 0  # idempotent
    assert service.purge(1, now=NOW) == 1
    assert topics(services) == ["today"]
    with pytest.raises(ValueError):
        service.purge(0)


@pytest.mark.backends
def test_the_background_purger_applies_the_retention(services: Services) -> None:
    letters(services, old=31, recent=1)
    purger = DeadLetterPurger(DeadLetterService(services.engine), days=30, interval=0.05)
    purger.start()
    try:
        assert purger.wait_for_rounds(1, timeout=10)
    finally:
        purger.stop()
    assert topics(services) == ["recent"]


def test_the_api_process_runs_the_purger(services: Services) -> None:
    with TestClient(create_app(services=services)) as client:
        background = client.app.state.background  # type: ignore[attr-defined]
        purger = background["aihub-dead-letter-purge"]
        assert purger.days == services.settings.dead_letter_days == 30


def test_cli_lists_and_purges_dead_letters(services: Services, settings: Any,
                                           tmp_path: Path) -> None:
    letters(services, old=45, recent=2)
    env = {"AIHUB_DATA_DIR": str(settings.data_dir), "COLUMNS": "200", "PATH": "/usr/bin:/bin",
           "PYTHONPATH": os.environ.get("PYTHONPATH", "")}

    def aihub(*args: str, code: int = 0) -> str:
        done = subprocess.run([sys.executable, "-c", "from aihub.cli import main; main()",
                               *args], capture_output=True, text=True, env=env, cwd=tmp_path,
                              timeout=120)
        assert done.returncode == code, done.stdout + done.stderr
        assert "Traceback" not in done.stderr
        return done.stdout + done.stderr

    listed = aihub("stream", "dead-letters", "--tenant", "t1")
    assert "2 in all" in listed and "reason old" in listed and "reason recent" in listed
    assert listed.index("reason recent") < listed.index("reason old")  # newest first
    assert "purged 1 dead letters older than 30 days" in aihub("stream", "purge-dead-letters")
    assert topics(services) == ["recent"]
    assert "purged 1 dead letters older than 1 days" in aihub(
        "stream", "purge-dead-letters", "--days", "1")
    assert "0 in all" in aihub("stream", "dead-letters", "--tenant", "t1")
    assert "--days" in aihub("stream", "purge-dead-letters", "--days", "0", code=2)
    assert "tenant" in aihub("stream", "dead-letters", "--tenant", "no such/tenant", code=2)
