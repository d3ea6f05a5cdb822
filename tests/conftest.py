"""Generic fixtures shared by the whole suite.

``mosquitto``: a real Mosquitto broker on a free 127.0.0.1 port (anonymous, no
persistence), stopped after the test. ``mosquitto_factory``: make brokers with extra
configuration (TLS listeners, persistence) and stop/restart them on the same port.
``free_port``: a function returning an unused 127.0.0.1 port.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

START_TIMEOUT = 10.0


def _mosquitto_binary() -> str | None:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Mosquitto:
    """One broker: ``host``, ``port``; ``stop()``, ``start()``, ``restart()``."""

    host = "127.0.0.1"

    def __init__(self, binary: str, workdir: Path, port: int, extra_config: str = "",
                 persistence: bool = False) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = port
        self.log_file = workdir / "mosquitto.log"
        self.config_file = workdir / "mosquitto.conf"
        lines = [
            # As root, mosquitto drops to the "mosquitto" user, which cannot write the
            # temporary directory; keep the invoking user instead.
            f"user {getpass.getuser()}" if os.geteuid() == 0 else "",
            f"listener {port} 127.0.0.1",
            "allow_anonymous true",
            f"persistence {'true' if persistence else 'false'}",
            f"persistence_location {workdir}/",
            f"log_dest file {self.log_file}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            # Queue without bound for a subscriber that lags (a loaded machine): the
            # default, 1000 QoS 1 messages, drops the rest, which a test would take for a
            # loss by the agent.
            "max_queued_messages 0",
            extra_config,
        ]
        self.config_file.write_text("\n".join(lines) + "\n")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> Mosquitto:
        assert not self.running, "broker already running"
        self._process = subprocess.Popen(
            [self.binary, "-c", str(self.config_file)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self._process.returncode}: "
                                   f"{self._process.stderr.read().decode(errors='replace')}"
                                   f"{self.log_text()}")
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen on port {self.port} within "
                           f"{START_TIMEOUT} s:\n{self.log_text()}")

    def stop(self) -> None:
        """Graceful stop (SIGTERM), as systemd does; SIGKILL if it hangs."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        if process.stderr is not None:
            process.stderr.close()

    def restart(self) -> Mosquitto:
        self.stop()
        return self.start()

    def log_text(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""


@pytest.fixture
def mosquitto_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """``make(extra_config="", persistence=False, port=None) -> Mosquitto`` (started)."""
    binary = _mosquitto_binary()
    if binary is None:
        message = "mosquitto not installed (bash scripts/test installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    brokers: list[Mosquitto] = []

    def make(extra_config: str = "", persistence: bool = False,
             port: int | None = None) -> Mosquitto:
        workdir = tmp_path_factory.mktemp("mosquitto")
        broker = Mosquitto(binary, workdir, port or free_port(), extra_config, persistence)
        brokers.append(broker)
        return broker.start()

    yield make
    for broker in brokers:
        broker.stop()


@pytest.fixture(name="free_port")
def free_port_fixture():
    """``free_port() -> int``: an unused TCP port on 127.0.0.1 (for extra listeners)."""
    return free_port


@pytest.fixture
def mosquitto(mosquitto_factory) -> Mosquitto:
    """A started broker on a free 127.0.0.1 port: anonymous, persistence off."""
    return mosquitto_factory()
