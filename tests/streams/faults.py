"""A Mosquitto of a test's own on a free loopback port, which the test may kill and
restart (the machine's broker on 1883 is never touched)."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.streams.conftest import broker_up, require_mosquitto_binary


class OwnBroker:
    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.conf = folder / "mosquitto.conf"
        # ``user root``: started as root, mosquitto would switch to its own user, who can't
        # write this folder. Persistence saved every second, so a kill loses at most the
        # last second of the broker's own state (the tests wait longer than that).
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "user root\n"
            "persistence true\n"
            f"persistence_location {folder}/\n"
            "autosave_interval 1\n"
            "max_queued_messages 0\n"
            f"log_dest file {folder}/mosquitto.log\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while not broker_up("127.0.0.1", self.port):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"own mosquitto did not start: {self.log()}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: a crash, not a shutdown."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            self.proc = None

    def log(self) -> str:
        path = self.folder / "mosquitto.log"
        if not path.exists():
            return ""
        lines = [x for x in path.read_text().splitlines() if "Saving in-memory" not in x]
        return "\n".join(lines[-60:])


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[OwnBroker]:
    require_mosquitto_binary()
    broker = OwnBroker(tmp_path / "broker")
    broker.start()
    yield broker
    broker.stop()
